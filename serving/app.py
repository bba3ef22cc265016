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


class PredictRequest:
    """One predict request on its way: the served model and validated rows, then the answer, and the log record."""

    def __init__(self, model_name: str):
        self.start = time.perf_counter()
        self.record: dict[str, Any] = {"time": time.time(), "request_id": uuid.uuid4().hex, "model": model_name}
        self.model: LoadedModel | None = None
        self.rows: list[dict] = []
        self.status, self.response = 500, {"error": "internal error (unanswered)"}

    def answer(self, scores: list, model_name: str, explain: bool) -> None:
        response = self.model.response(scores, model_name)
        if explain:
            try:
                response["explanations"] = self.model.explain(self.rows)
            except LookupError as e:
                raise InvalidRequestError(str(e), 404) from None
        self.status, self.response = 200, response
        self.record.update(model_version=self.model.version, instances=self.rows, predictions=scores)

    def fail(self, e: Exception) -> None:
        """The answer to a failed request: the client's fault (4xx), no model yet (503), or a bug (500, logged
        without the request body)."""
        self.model = None
        if isinstance(e, InvalidRequestError):
            self.status, self.response = e.status, {"error": str(e)}
            self.record["error"] = str(e)
        elif isinstance(e, ModelUnavailableError):
            self.status, self.response = 503, {"error": str(e)}
            self.record["error"] = str(e)
        else:
            self.status, self.response = 500, {"error": f"internal error ({type(e).__name__})"}
            self.record["error"] = f"{type(e).__name__}: {str(e)[:200]}"


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
        request = self._begin(body)
        if request.model is not None:
            try:
                scores = self._score(request.model, request.rows)
                request.answer(scores, self.model_name, explain)
            except Exception as e:
                request.fail(e)
        return self._finish(request)

    async def predict_async(self, body: bytes) -> tuple[int, dict]:
        """`predict` (no explain) on the event loop: only the model call leaves it, to the batcher's thread."""
        request = self._begin(body)
        if request.model is not None:
            try:
                scores = self._cached(request.model, request.rows)
                if any(s is None for s in scores):
                    missing = [i for i, s in enumerate(scores) if s is None]
                    fresh = await self.batcher.predict_async(request.model, [request.rows[i] for i in missing])
                    self._fill(request.model, request.rows, scores, missing, fresh)
                request.answer(scores, self.model_name, explain=False)
            except Exception as e:
                request.fail(e)
        return self._finish(request)

    def _begin(self, body: bytes) -> PredictRequest:
        """The request parsed and validated against the served model's schema (or failed, with its status)."""
        request = PredictRequest(self.model_name)
        try:
            instances = self._instances(body)
            request.model = self.store.pick()
            validated = request.model.validator.instances(instances)
            request.rows = validated.rows
            request.record.update(validated.counts())  # values served that training did not have, per field
            if self.key_column:
                request.record["keys"] = [str(raw.get(self.key_column, ""))[:200] for raw in instances]
        except Exception as e:
            request.fail(e)
        return request

    def _finish(self, request: PredictRequest) -> tuple[int, dict]:
        request.record.update(status=request.status, latency_ms=round((time.perf_counter() - request.start) * 1000, 3))
        self.counts[request.status] += 1
        self.log.add(request.record)
        return request.status, request.response

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
        scores = self._cached(model, rows)
        missing = [i for i, s in enumerate(scores) if s is None]
        if missing:
            self._fill(model, rows, scores, missing, self.batcher.predict(model, [rows[i] for i in missing]))
        return scores

    def _cached(self, model: LoadedModel, rows: list[dict]) -> list[float | None]:
        if not self.cache.size:
            return [None] * len(rows)
        return [self.cache.get((model.version, *r.values())) for r in rows]

    def _fill(self, model: LoadedModel, rows: list[dict], scores: list, missing: list[int], fresh: list) -> None:
        for i, s in zip(missing, fresh, strict=True):
            scores[i] = s
            if self.cache.size:
                self.cache.put((model.version, *rows[i].values()), s)

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
