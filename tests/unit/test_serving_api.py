"""The ASGI layer of the prediction server, driven directly (no socket, no model): predict requests take the
fast path to the App, everything else goes through FastAPI, with the same bodies and status codes."""

import asyncio
import json

import pytest

from serving.api import make_api
from serving.app import App
from serving.model_store import ModelStore

pytestmark = pytest.mark.unit


@pytest.fixture
def asgi(tmp_path):
    app = App(ModelStore(str(tmp_path / "empty")), "taxi-tips", max_body_bytes=1000, max_instances=10, max_batch=8,
              cache_size=0, log_path=None)  # fmt: skip
    return make_api(app, "/predict", "/health"), app


def call(asgi_app, method: str, path: str, body: bytes = b"", headers: dict | None = None, chunk: int = 0):
    """(status, headers, parsed body) of one request; `chunk` splits the body into messages of that size."""
    if headers is None:
        headers = {"content-type": "application/json", "content-length": str(len(body))}
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
             "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 5000),
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}  # fmt: skip
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(asgi_app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    data = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, json.loads(data)


def test_predict_answers_through_the_app_with_its_messages(asgi):
    api, app = asgi
    body = json.dumps({"instances": [{"fare": 3.0}]}).encode()
    status, headers, answer = call(api, "POST", "/predict", body, chunk=7)  # a body in several messages
    assert status == 503 and "no pushed model" in answer["error"]  # the store is empty
    assert headers["content-type"] == "application/json" and int(headers["content-length"]) > 0
    assert call(api, "POST", "/v1/models/taxi-tips:predict", b"{not json")[0:3:2] == (
        400,
        {"error": "request body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
                  "(char 1)"},
    )  # fmt: skip
    assert app.counts[503] == 1 and app.counts[400] == 1  # both reached the App


def test_length_errors_close_the_connection(asgi):
    api, app = asgi
    status, headers, answer = call(api, "POST", "/predict", b"{}", headers={"content-type": "application/json"})
    assert (status, answer) == (411, {"error": "Content-Length is required"}) and headers["connection"] == "close"
    big = b"x" * 5000
    status, headers, answer = call(api, "POST", "/predict", big, chunk=1000)
    assert (status, answer) == (413, {"error": "request body over 1000 bytes"}) and headers["connection"] == "close"
    assert not app.counts  # refused before the App


def test_other_routes_and_the_spec_go_through_fastapi(asgi):
    api, _ = asgi
    status, _, spec = call(api, "GET", "/openapi.json")
    assert status == 200
    assert set(spec["paths"]) >= {"/predict", "/v1/models/taxi-tips:predict", "/explain", "/health"}
    assert spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "instances"
    ]
    assert call(api, "GET", "/health")[0] == 503
    status, _, answer = call(api, "GET", "/predict")  # a wrong method is no route, as before
    assert (status, answer) == (404, {"error": "no route /predict"})
