"""A small HTTP server speaking the serving API's contract, for the page's unit tests.

It answers like the serving API (predict, feedback with a row count, retraining
every k rows and the promotion gate's decision, /model with classes, the kept
versions and a rollback to one of them), records every request it gets, and can be
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


def version_entry(
    version: int,
    *,
    accepted: bool | None = True,
    reason: str = "retraining",
    f1: float = 0.95,
    feedback_f1: float | None = None,
    gate_reason: str | None = None,
) -> dict[str, Any]:
    """One kept version as GET /model/versions lists it (its status is set when
    listed); `accepted=None` is the first model, which no gate judged."""
    holdout = {"accuracy": f1, "balanced_accuracy": f1 - 0.01, "f1_macro": f1, "rows": 360}
    feedback = {"rows": 0} if feedback_f1 is None else {"f1_macro": feedback_f1, "rows": 20}
    gate = None
    if accepted is not None:
        why = "no worse than the champion" if accepted else "worse than allowed: f1_macro"
        gate = {
            "accepted": accepted,
            "reason": gate_reason or why,
            "candidate": {"reference": holdout, "feedback": feedback},
            "champion": None,
            "best": None,
            "champion_version": version - 1,
            "trained_on_contested": False,
        }
    return {
        "version": version,
        "trained_at": f"2026-01-0{min(version, 9)}T12:00:00+00:00",
        "reason": reason,
        "rows": {"ref": 1437, "synthetic": 0, "prod": 2 * (version - 1), "total": 1437},
        "metrics": {"holdout": holdout, "feedback": feedback, "seconds": 1.5},
        "gate": gate,
    }


@dataclass
class ContractServer:
    prediction: int = 3
    classes: list = field(default_factory=lambda: list(range(10)))
    dataset: str = "digits"  # manifest.extra.dataset, which the page's words follow
    k: int = 2
    version: int = 1
    rows: int = 0
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    overrides: dict[str, Override] = field(default_factory=dict)
    token: str | None = None  # like API_TOKEN: /feedback, /model/rollback need the bearer token
    retraining: str = "done"  # what the k-th feedback reports: done, running or failed
    gate_rejects: bool = False  # the promotion gate turns down the next candidates
    # The kept versions, oldest first; `version` is the one in use.
    history: list[dict[str, Any]] = field(
        default_factory=lambda: [version_entry(1, accepted=None, reason="bootstrap")]
    )
    url: str = ""

    def answer(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        if path == "/health":
            return 200, {"status": "ok", "model_version": self.version}
        if method == "GET" and path == "/model":
            return 200, {
                "manifest": {
                    "version": self.version,
                    "classes": self.classes,
                    "extra": {"dataset": self.dataset, "kind": "images"},
                },
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
        if method == "GET" and path == "/model/versions":
            return 200, [{**entry, "status": self.status(entry)} for entry in self.history]
        needs_token = method == "POST" and path in ("/feedback", "/model/rollback")
        if needs_token and self.token and headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"detail": "this route needs the header `Authorization: Bearer`"}
        if method == "POST" and path == "/model/rollback":
            return self.rollback(body)
        if method == "POST" and path == "/feedback":
            if body["target"] not in self.classes:
                return 422, {"detail": f"unknown label {body['target']!r}"}
            self.rows += 1
            due = self.rows % self.k == 0
            retrained = due and self.retraining == "done"
            candidate = None
            if retrained:
                candidate = max([self.version] + [e["version"] for e in self.history]) + 1
                self.history.append(version_entry(candidate, accepted=not self.gate_rejects))
                self.version = self.version if self.gate_rejects else candidate
            return 200, {
                "stored": True,
                "rows": self.rows,
                "retrained": retrained,
                "retraining": self.retraining if due else "none",
                "model_version": self.version,
                "promoted": None if candidate is None else not self.gate_rejects,
                "candidate_version": candidate,
            }
        return 404, {"detail": "Not Found"}

    def status(self, entry: dict[str, Any]) -> str:
        if entry["version"] == self.version:
            return "active"
        gate = entry.get("gate")
        return "rejected" if gate and not gate.get("accepted", True) else "accepted"

    def rollback(self, body: Any) -> tuple[int, Any]:
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, int) or version < 1:
            return 422, {"detail": [{"loc": ["body", "version"], "msg": "Input should be >= 1"}]}
        entry = next((e for e in self.history if e["version"] == version), None)
        if entry is None:
            return 404, {"detail": f"there is no version {version}"}
        if self.status(entry) == "rejected":
            reason = entry["gate"]["reason"]
            return 409, {"detail": f"version {version} was rejected by the gate ({reason})"}
        previous, self.version = self.version, version
        return 200, {"model_version": version, "previous_version": previous}


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
