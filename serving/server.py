"""HTTP prediction server (FastAPI on uvicorn) for the newest pushed model, in Vertex AI's request/response JSON.

  python -m serving.server --config configs/taxi.yaml       (make serve)

  POST /v1/models/<name>:predict   {"instances": [{raw feature values}, ...]}
                                   -> {"predictions": [{"probability": p}, ...], "deployedModelId": ...}
  POST /v1/models/<name>:explain   the same, plus "explanations": integrated-gradients attributions
                                   per raw input (Vertex AI's explanation form)
  GET  /health                     200 once a model is loaded, else 503
  GET  /v1/models/<name>           served versions, traffic split, input contract
  GET  /openapi.json               the OpenAPI spec of these routes

Binds 127.0.0.1 unless told otherwise. On a Vertex AI custom-container endpoint
the routes and port come from AIP_PREDICT_ROUTE / AIP_HEALTH_ROUTE / AIP_HTTP_PORT.
Requests are validated against the model's serving schema (4xx naming the
field); concurrent requests are scored together in one model call; repeated
rows are answered from a per-version cache; a newly pushed version is loaded
in the background and swapped in between requests. Every request is logged as
one JSON line (model inputs only: personal columns are dropped on arrival).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import queue
import socket
import sys
import threading
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from serving.model_store import LoadedModel, ModelStore, ModelUnavailableError
from serving.prediction_log import PredictionLog
from serving.validation import InvalidRequestError, request_instances


class Batcher:
    """Scores the rows of concurrent requests in shared model calls (one thread owns the model calls)."""

    def __init__(self, max_batch: int):
        self.max_batch = max_batch
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._thread.start()

    def predict(self, model: LoadedModel, rows: list[dict]) -> list[float]:
        job = {"model": model, "examples": rows, "done": threading.Event(), "result": None, "error": None}
        self._queue.put(job)
        job["done"].wait()
        if job["error"] is not None:
            raise job["error"]
        return job["result"]

    def _run(self) -> None:
        while True:
            jobs = [self._queue.get()]
            rows = len(jobs[0]["examples"])
            while rows < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                jobs.append(job)
                rows += len(job["examples"])
            by_model: dict[int, list[dict]] = collections.defaultdict(list)
            for job in jobs:
                by_model[id(job["model"])].append(job)
            for group in by_model.values():
                examples = [e for job in group for e in job["examples"]]
                try:
                    scores = group[0]["model"].predict(examples)
                except Exception as e:  # answered as 500 by the request that owns it
                    for job in group:
                        job["error"] = e
                        job["done"].set()
                    continue
                start = 0
                for job in group:
                    n = len(job["examples"])
                    job["result"] = scores[start : start + n]
                    start += n
                    job["done"].set()


class PredictionCache:
    """LRU of (model version, serialized row) -> score."""

    def __init__(self, size: int):
        self.size = size
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key) -> float | None:
        if not self.size:
            return None
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return value

    def put(self, key, value: float) -> None:
        if not self.size:
            return
        with self._lock:
            self._items[key] = value
            if len(self._items) > self.size:
                self._items.popitem(last=False)


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


DISCARD_LIMIT = 64 * 1024 * 1024  # an oversized body is read and dropped up to this size

# The request body the predict and explain routes take (Vertex AI's predict request), for the OpenAPI spec; the
# server validates the body itself (App.predict) so that a bad one gets the same message as always.
PREDICT_REQUEST = {
    "type": "object",
    "required": ["instances"],
    "additionalProperties": False,
    "properties": {
        "instances": {"type": "array", "minItems": 1, "items": {"type": "object"},
                      "description": "rows of raw feature values, by column name"},
        "parameters": {"type": "object"},
    },
}  # fmt: skip
ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
PREDICT_RESPONSES = {
    "200": {"description": "one prediction per instance, and the model version that made them"},
    "400": {"description": "the body or an instance is invalid (the message names the field)",
            "content": {"application/json": {"schema": ERROR}}},
    "404": {"description": "no such route, or the model has no explain signature",
            "content": {"application/json": {"schema": ERROR}}},
    "411": {"description": "no Content-Length", "content": {"application/json": {"schema": ERROR}}},
    "413": {"description": "body or instance count over the limit", "content": {"application/json": {"schema": ERROR}}},
    "503": {"description": "no model loaded yet", "content": {"application/json": {"schema": ERROR}}},
}  # fmt: skip


def make_api(app: App, predict_route: str, health_route: str):
    """The FastAPI application over `app`: the same routes, bodies and status codes on any ASGI server."""
    metadata_route = f"/v1/models/{app.model_name}"
    api = FastAPI(title=f"{app.model_name} prediction server", version="1", docs_url=None, redoc_url=None,
                  description="Vertex AI's predict request and response JSON; see serving/server.py.")  # fmt: skip

    def answer(status: int, body: dict, close: bool = False) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers={"Connection": "close"} if close else None)

    @api.exception_handler(HTTPException)
    async def no_route(request: Request, exc: HTTPException):  # 404 and 405 alike, as before: no such route
        if exc.status_code in (404, 405):
            return answer(404, {"error": f"no route {request.url.path[:100]}"})
        return answer(exc.status_code, {"error": str(exc.detail)})

    async def body_of(request: Request) -> bytes | JSONResponse:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return answer(411, {"error": "Content-Length is required"}, close=True)
        if int(length) > app.max_body_bytes:
            read = 0  # drained, so that closing does not reset the connection before the answer
            async for chunk in request.stream():
                read += len(chunk)
                if read >= min(int(length), DISCARD_LIMIT):
                    break
            return answer(413, {"error": f"request body over {app.max_body_bytes} bytes"}, close=True)
        return await request.body()

    def scoring(explain: bool):
        async def endpoint(request: Request):
            body = await body_of(request)
            if isinstance(body, JSONResponse):
                return body
            status, response = await run_in_threadpool(app.predict, body, explain)  # micro-batched across threads
            return answer(status, response)

        return endpoint

    openapi = {"requestBody": {"required": True, "content": {"application/json": {"schema": PREDICT_REQUEST}}}}
    routes = {predict_route: False, f"{metadata_route}:predict": False, "/explain": True,
              f"{metadata_route}:explain": True}  # fmt: skip
    for route, explain in routes.items():
        api.add_api_route(route, scoring(explain), methods=["POST"], openapi_extra=openapi,
                          responses=PREDICT_RESPONSES, name=f"{'explain' if explain else 'predict'} {route}")  # fmt: skip

    @api.get(health_route, responses={"503": {"description": "no model loaded yet"}})
    def health():
        try:
            app.store.pick()
            return answer(200, {"status": "ok"})
        except ModelUnavailableError as e:
            return answer(503, {"status": "unavailable", "error": str(e)})

    @api.get(metadata_route, responses={"503": {"description": "no model loaded yet"}})
    def metadata():
        try:
            return answer(200, app.metadata())
        except ModelUnavailableError as e:
            return answer(503, {"error": str(e)})

    return api


class Server:
    """The HTTP server (FastAPI on uvicorn), the model watcher and the batcher, started and stopped together."""

    def __init__(self, app: App, host: str, port: int, poll_seconds: float, predict_route: str = "/predict",
                 health_route: str = "/health"):  # fmt: skip
        import uvicorn

        self.app = app
        self.api = make_api(app, predict_route, health_route)
        config = uvicorn.Config(self.api, host=host, port=port, log_level="warning", access_log=False,
                                lifespan="off", backlog=256, timeout_keep_alive=30)  # fmt: skip
        self.uvicorn = uvicorn.Server(config)
        self.socket = config.bind_socket()  # bound now: `url` is known before start (port 0 picks a free one)
        # accepted connections inherit it: headers and body go out as separate writes, and Nagle would hold the
        # body back for the client's delayed ACK (40 ms a request)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self, timeout: float = 30.0) -> Server:
        self.app.store.refresh()
        self.app.store.watch(self.poll_seconds, self._stop)
        self._thread = threading.Thread(target=self.uvicorn.run, kwargs={"sockets": [self.socket]}, name="http",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self.uvicorn.should_exit = True
            self._thread.join(timeout=30)
        self.socket.close()
        self.app.log.close()


def build(config, host: str | None = None, port: int | None = None, serving_dir: str | None = None) -> Server:
    """A server for `config` (a settings.config.Config); port 0 picks a free port."""
    s = config.serving
    key = [config.data.key_column] if config.data.key_column else []
    store = ModelStore(
        serving_dir or config.pipeline.serving_dir, [*config.data.personal_columns, *key], s.canary_percent,
        s.reject_out_of_domain,
    )  # fmt: skip
    app = App(store, config.pipeline.name, s.max_body_bytes, s.max_instances, s.max_batch, s.cache_size, s.log_path,
              config.data.key_column)  # fmt: skip
    return Server(
        app,
        host or s.host,
        s.port if port is None else port,
        s.poll_seconds,
        predict_route=os.environ.get("AIP_PREDICT_ROUTE", "/predict"),
        health_route=os.environ.get("AIP_HEALTH_ROUTE", "/health"),
    )


def main(argv: list[str] | None = None) -> int:
    from settings import logs
    from settings.config import ConfigError, load_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/taxi.yaml")
    parser.add_argument("--host", help="default: serving.host (127.0.0.1)")
    parser.add_argument("--port", type=int, help="default: AIP_HTTP_PORT or serving.port")
    parser.add_argument("--serving-dir", help="default: pipeline.serving_dir (or AIP_STORAGE_URI on Vertex)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    logs.setup(config.log_level, model=config.pipeline.name, entry="server")
    port = args.port if args.port is not None else int(os.environ.get("AIP_HTTP_PORT", config.serving.port))
    server = build(config, args.host, port, args.serving_dir or os.environ.get("AIP_STORAGE_URI"))
    server.start()
    split = server.app.store.split()
    logs.bind(model_versions=",".join(split))
    logging.info("serving on %s", server.url)
    print(json.dumps({"event": "serving", "url": server.url, "model": config.pipeline.name, "versions": split}))
    if not split:
        logging.warning("no pushed model yet in %s: run `make run` (health is 503 until one lands)",
                        server.app.store.serving_dir)  # fmt: skip
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
