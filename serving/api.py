"""The HTTP routes (FastAPI) over an App: Vertex AI's predict and explain JSON, health, metadata and
the OpenAPI spec, with the same bodies and status codes on any ASGI server."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from serving.app import App
from serving.model_store import ModelUnavailableError

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
            if explain:  # attributions are a model call of their own, in a worker thread
                status, response = await run_in_threadpool(app.predict, body, True)
            else:  # parsed and validated here; the batcher's thread scores this request with concurrent ones
                status, response = await app.predict_async(body)
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

    return PredictFastPath(api, app, [predict_route, f"{metadata_route}:predict"])


class PredictFastPath:
    """The ASGI app: predict requests go straight to the App, without FastAPI's router, middleware and
    request objects (at one row, they were a fifth of the time a request spends in the server); every other
    request, and the OpenAPI spec that documents predict, goes through FastAPI. Same bodies and status codes."""

    def __init__(self, api: FastAPI, app: App, predict_routes: list[str]):
        self.api = api
        self.app = app
        self.routes = frozenset(predict_routes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.routes:
            return await self.api(scope, receive, send)
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is None or not length.isdigit():
            return await _send(send, 411, {"error": "Content-Length is required"}, close=True)
        length = int(length)
        if length > self.app.max_body_bytes:
            read, more = 0, True  # drained, so that closing does not reset the connection before the answer
            while more and read < min(length, DISCARD_LIMIT):
                message = await receive()
                read += len(message.get("body", b""))
                more = message.get("more_body", False) and message["type"] == "http.request"
            return await _send(send, 413, {"error": f"request body over {self.app.max_body_bytes} bytes"}, True)
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            status, response = await self.app.predict_async(b"".join(chunks))
        except Exception as e:  # predict_async answers its own failures; this is a bug in the layer itself
            status, response = 500, {"error": f"internal error ({type(e).__name__})"}
        return await _send(send, status, response)


async def _send(send, status: int, body: dict, close: bool = False) -> None:
    """A JSON response with the bytes and headers Starlette's JSONResponse gives."""
    data = json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()
    headers = [(b"content-length", str(len(data)).encode()), (b"content-type", b"application/json")]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
