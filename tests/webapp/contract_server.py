"""A small HTTP server speaking the serving API's contract, for the page's unit tests.

It answers like the serving API (predict, feedback with a row count, retraining
every k rows, /model with classes), records every request it gets, and can be
told to answer a route with a given status and body, or to be slow.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Override:
    status: int = 200
    body: Any = None  # JSON-encodable, or bytes sent as they are
    delay: float = 0.0


@dataclass
class ContractServer:
    prediction: int = 3
    classes: list = field(default_factory=lambda: list(range(10)))
    k: int = 2
    version: int = 1
    rows: int = 0
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    overrides: dict[str, Override] = field(default_factory=dict)
    token: str | None = None  # like API_TOKEN: /feedback then needs the bearer token
    retraining: str = "done"  # what the k-th feedback reports: done, running or failed
    url: str = ""

    def answer(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        if path == "/health":
            return 200, {"status": "ok", "model_version": self.version}
        if method == "GET" and path == "/model":
            return 200, {
                "manifest": {"version": self.version, "classes": self.classes},
                "retrain_every_k": self.k,
                "prod_rows": self.rows,
                "retraining": False,
                "history": [],
            }
        if method == "POST" and path == "/predict":
            image = base64.b64decode(body["image"], validate=True)
            if not image:
                return 422, {"detail": "image: empty"}
            probabilities = {str(c): 0.02 for c in self.classes}
            probabilities[str(self.prediction)] = 1 - 0.02 * (len(self.classes) - 1)
            return 200, {
                "prediction": self.prediction,
                "probabilities": probabilities,
                "model_version": self.version,
                "prediction_id": f"p{len(self.requests)}",
            }
        if method == "POST" and path == "/feedback":
            if self.token and headers.get("Authorization") != f"Bearer {self.token}":
                return 401, {"detail": "this route needs the header `Authorization: Bearer`"}
            if body["target"] not in self.classes:
                return 422, {"detail": f"unknown label {body['target']!r}"}
            self.rows += 1
            due = self.rows % self.k == 0
            retrained = due and self.retraining == "done"
            self.version += int(retrained)
            return 200, {
                "stored": True,
                "rows": self.rows,
                "retrained": retrained,
                "retraining": self.retraining if due else "none",
                "model_version": self.version,
            }
        return 404, {"detail": "Not Found"}


def _handler(server_state: ContractServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            server_state.requests.append((method, self.path, body))
            override = server_state.overrides.get(self.path) or Override()
            time.sleep(override.delay)
            status, payload = override.status, override.body
            if payload is None:  # no canned answer: answer as the API would
                status, payload = server_state.answer(method, self.path, body, dict(self.headers))
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


class running:  # noqa: N801 - used as a context manager, like open()
    """Run a ContractServer on a free loopback port for the duration of a `with`."""

    def __init__(self, state: ContractServer) -> None:
        self.state = state
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> ContractServer:
        self.thread.start()
        self.state.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        return self.state

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
