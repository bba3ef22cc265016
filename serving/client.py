"""A thin client for the prediction server (or any endpoint speaking Vertex AI's predict JSON).

python -m serving.client --url http://127.0.0.1:8080 '{"trip_miles": 3.1, ...}'
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
from urllib.parse import urlparse


def parsed(data: bytes, content_type: str) -> dict:
    """A JSON body as a dict; another (the HTTP layer's own plain-text refusal of a malformed request) as
    {"error": its text}."""
    if not data:
        return {}
    if content_type.startswith("application/json"):
        return json.loads(data)
    return {"error": data.decode("utf-8", "replace")[:500]}


class PredictionClient:
    """One keep-alive connection; `predict` returns (HTTP status, parsed JSON body)."""

    def __init__(self, url: str = "http://127.0.0.1:8080", route: str = "/predict", timeout: float = 30):
        parsed = urlparse(url)
        self.route = route
        self._conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=timeout)

    def predict(self, instances: list[dict]) -> tuple[int, dict]:
        return self.post_raw(json.dumps({"instances": instances}).encode())

    def explain(self, instances: list[dict]) -> tuple[int, dict]:
        """The server's explain route: predictions plus per-input attributions."""
        body = json.dumps({"instances": instances}).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        return self._request("POST", "/explain", body, headers)

    def post_raw(self, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
        """POSTs `body` as is (for tests of malformed requests)."""
        hdrs = {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}
        return self._request("POST", self.route, body, hdrs)

    def get(self, path: str) -> tuple[int, dict]:
        return self._request("GET", path, None, {})

    def _request(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, dict]:
        for attempt in (1, 2):
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self._conn.close()
                return response.status, parsed(data, response.getheader("Content-Type", ""))
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._conn.close()  # the server closed an idle keep-alive connection: reconnect once
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("instance", nargs="+", help="one JSON object per instance")
    args = parser.parse_args(argv)
    status, body = PredictionClient(args.url).predict([json.loads(i) for i in args.instance])
    print(json.dumps(body, indent=2))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
