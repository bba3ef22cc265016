"""HTTP prediction server (FastAPI on uvicorn) for the newest pushed model, in Vertex AI's request/response JSON.

  python -m serving.server --config configs/taxi.yaml       (make serve)
  python -m serving.server --config configs/vertex-smoke.yaml --workdir build/vertex-local/vertex-smoke
                                   (make serve CONFIG=configs/vertex-smoke.yaml WORKDIR=build/vertex-local/vertex-smoke:
                                   what `make vertex-local` pushed)

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

import json
import logging
import os
import socket
import sys
import threading
import time

from serving.api import make_api
from serving.app import App
from serving.model_store import ModelStore
from settings import entry


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
        s.strict_domains,
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


@entry.config_errors_exit
def main(argv: list[str] | None = None) -> int:
    from settings import logs

    where = "the run's: its serving/ (a run's --workdir), or a Vertex profile's `make vertex-local` gcs/"
    parser = entry.parser(__doc__, workdir=where)
    parser.add_argument("--host", help="default: serving.host (127.0.0.1)")
    parser.add_argument("--port", type=int, help="default: AIP_HTTP_PORT or serving.port")
    parser.add_argument("--serving-dir", help="default: pipeline.serving_dir (or AIP_STORAGE_URI on Vertex)")
    args = parser.parse_args(argv)
    config = entry.load(args, workdir=args.workdir)
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
