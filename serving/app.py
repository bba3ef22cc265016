"""The prediction service without its HTTP layer: request validation, micro-batched scoring, the
prediction cache, the request log and the counters the metadata route reports."""

from __future__ import annotations

import collections
import json
import time
import uuid
from typing import Any

from serving.batching import Batcher, PredictionCache
from serving.model_store import LoadedModel, ModelStore, ModelUnavailableError
from serving.prediction_log import PredictionLog
from serving.validation import InvalidRequestError, request_instances


class App:
    """Everything a request handler needs; independent of the HTTP layer."""

    def __init__(self, store: ModelStore, model_name: str, max_body_bytes: int, max_instances: int,
                 max_batch: int, cache_size: int, log_path: str | None, key_column: str | None = None):  # fmt: skip
        self.store = store
        self.key_column = key_column  # logged with each row, so that labels arriving later can be joined
        self.model_name = model_name
        self.max_body_bytes = max_body_bytes
        self.max_instances = max_instances
        self.batcher = Batcher(max_batch)
        self.cache = PredictionCache(cache_size)
        self.log = PredictionLog(log_path)
        self.counts: collections.Counter = collections.Counter()

    def predict(self, body: bytes, explain: bool = False) -> tuple[int, dict]:
        """(status, response) for one predict (or, with `explain`, explain) request body; never raises."""
        start = time.perf_counter()
        request_id = uuid.uuid4().hex
        record: dict[str, Any] = {"time": time.time(), "request_id": request_id, "model": self.model_name}
        try:
            instances = self._instances(body)
            model = self.store.pick()
            rows = [model.validator.instance(raw, i) for i, raw in enumerate(instances)]
            if self.key_column:
                record["keys"] = [str(raw.get(self.key_column, ""))[:200] for raw in instances]
            scores = self._score(model, rows)
            status = 200
            response = model.response(scores, self.model_name)
            if explain:
                try:
                    response["explanations"] = model.explain(rows)
                except LookupError as e:
                    raise InvalidRequestError(str(e), 404) from None
            record.update(model_version=model.version, instances=rows, predictions=scores)
        except InvalidRequestError as e:
            status, response = e.status, {"error": str(e)}
            record["error"] = str(e)
        except ModelUnavailableError as e:
            status, response = 503, {"error": str(e)}
            record["error"] = str(e)
        except Exception as e:  # a bug, not the client's fault; logged without the request body
            status, response = 500, {"error": f"internal error ({type(e).__name__})"}
            record["error"] = f"{type(e).__name__}: {str(e)[:200]}"
        record.update(status=status, latency_ms=round((time.perf_counter() - start) * 1000, 3))
        self.counts[status] += 1
        self.log.add(record)
        return status, response

    def _instances(self, body: bytes) -> list:
        try:
            payload = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except InvalidRequestError:
            raise
        except UnicodeDecodeError:
            raise InvalidRequestError("request body is not UTF-8") from None
        except RecursionError:
            raise InvalidRequestError("request body is nested too deeply") from None
        except ValueError as e:
            raise InvalidRequestError(f"request body is not valid JSON: {str(e)[:120]}") from None
        return request_instances(payload, self.max_instances)

    def _score(self, model: LoadedModel, rows: list[dict]) -> list[float]:
        keys = [(model.version, *r.values()) for r in rows] if self.cache.size else None
        scores: list[float | None] = [self.cache.get(k) for k in keys] if keys else [None] * len(rows)
        missing = [i for i, s in enumerate(scores) if s is None]
        if missing:
            fresh = self.batcher.predict(model, [rows[i] for i in missing])
            for i, s in zip(missing, fresh, strict=True):
                scores[i] = s
                if keys:
                    self.cache.put(keys[i], s)
        return scores

    def metadata(self) -> dict:
        model = self.store.pick()
        return {
            "name": self.model_name,
            "versions": self.store.split(),
            "inputs": model.validator.describe(),
            "output": model.output,
            "requests": {str(k): v for k, v in sorted(self.counts.items())},
            "cache_hits": self.cache.hits,
            "log_lines_dropped": self.log.dropped,
            "log_lines_lost": self.log.lost,  # the write failed (a full disk): see the server's error log
            "refused_versions": self.store.refused(),
        }


def _reject_constant(name: str):
    raise InvalidRequestError(f"{name} is not a valid number in a request")
