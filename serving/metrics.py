"""Prometheus metrics of the serving API, correct under `uvicorn --workers N`.

Wiring (in api.py):

    import metrics
    metrics.instrument(app)                      # ASGI middleware + GET /metrics
    metrics.set_model_version(version)           # when a model is loaded or swapped
    metrics.observe_prediction(label)            # after each /predict
    metrics.observe_feedback(correct, rows=rows) # after each stored /feedback row
    metrics.observe_retrain(seconds, version)    # after each retraining

Every worker writes its values to small memory-mapped files in one folder
(prometheus-client's multiprocess mode) and /metrics sums them, so a scrape gives
the whole server's figures whichever worker answers it. The folder is
PROMETHEUS_MULTIPROC_DIR when set (then whoever starts the server empties it first);
otherwise one is made per server run under the temporary folder, keyed on the
process that owns the workers (uvicorn's supervisor, or this process when it runs
alone), so a restart starts from zero and old runs' folders are removed.

prometheus_client picks its storage when first imported; if it was imported before
this module, the choice is made again here. This module sets PROMETHEUS_MULTIPROC_DIR
in its process's environment (the library reads it there).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("serving.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Where this module chose the folder itself; a child process that inherits both
# variables (a server started by a process that imported this module) chooses its own.
AUTO_ENV = "MLSTACK_METRICS_AUTO_DIR"


class MetricsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore")

    accuracy_window: int = Field(
        default=100, ge=1, description="Feedback rows in the rolling accuracy window"
    )
    path: str = Field(default="/metrics", description="Route that serves the metrics")


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), to tell a live
    process from a new one that reuses its pid; '0' where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    # Field 22; the command name (field 2) may hold spaces, so split after its ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def _remove_stale_runs(base: Path, keep: Path) -> None:
    for run in base.iterdir():
        if run == keep or not run.is_dir():
            continue
        pid, _, started = run.name.partition("-")
        if pid.isdigit() and _start_time(int(pid)) == started:
            continue  # another server that is still running
        shutil.rmtree(run, ignore_errors=True)


def _multiproc_dir() -> Path:
    explicit = os.environ.get(MULTIPROC_ENV)
    if explicit and explicit != os.environ.get(AUTO_ENV):
        path = Path(explicit)
        path.mkdir(parents=True, exist_ok=True)
        return path
    # uvicorn --workers starts its workers with multiprocessing's spawn: they share a parent.
    parent = multiprocessing.parent_process()
    owner = parent.pid if parent is not None and parent.pid else os.getpid()
    base = Path(tempfile.gettempdir()) / "mlstack-metrics"
    path = base / f"{owner}-{_start_time(owner)}"
    path.mkdir(parents=True, exist_ok=True)
    _remove_stale_runs(base, keep=path)
    os.environ[MULTIPROC_ENV] = os.environ[AUTO_ENV] = str(path)
    return path


MULTIPROC_DIR = _multiproc_dir()

# Imported only now: prometheus_client reads PROMETHEUS_MULTIPROC_DIR on import.
from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import values as _values  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

if not getattr(_values.ValueClass, "_multiprocess", False):
    # Something imported prometheus_client before this module set the folder: the
    # metrics below must still be file-backed, or /metrics would not see them.
    _values.ValueClass = _values.get_value_class()

SETTINGS = MetricsSettings()
OUTCOMES_FILE = MULTIPROC_DIR / "feedback_outcomes.bin"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RETRAIN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

REQUESTS = Counter(
    "mlstack_http_requests",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "mlstack_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response body",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
IN_PROGRESS = Gauge(
    "mlstack_http_requests_in_progress",
    "Requests being handled now, all workers together",
    ["method"],
    multiprocess_mode="livesum",
)
PREDICTIONS = Counter("mlstack_predictions", "Predictions served, by predicted label", ["label"])
FEEDBACK = Counter(
    "mlstack_feedback",
    "Feedback rows stored, by whether the prediction matched the true label",
    ["correct"],
)
PROD_ROWS = Gauge(
    "mlstack_prod_data_rows",
    "Rows in prod_data.csv after the latest stored feedback",
    multiprocess_mode="mostrecent",
)
MODEL_VERSION = Gauge(
    "mlstack_model_version",
    "Version of the model in use (the one set most recently by a live worker)",
    multiprocess_mode="livemostrecent",
)
RETRAINS = Counter("mlstack_retrains", "Retrainings, by outcome", ["outcome"])
RETRAIN_SECONDS = Histogram(
    "mlstack_retrain_duration_seconds",
    "Wall-clock time of successful retrainings",
    buckets=RETRAIN_BUCKETS,
)
LAST_RETRAIN = Gauge(
    "mlstack_last_retrain_timestamp_seconds",
    "Unix time at which the latest successful retraining ended",
    multiprocess_mode="max",
)


def _label(value: object) -> str:
    return str(value.item() if hasattr(value, "item") else value)


# The labelled series are looked up once: labels() takes a lock and checks its
# arguments on every call. Their keys are few (labels, route templates, statuses).
@cache
def _prediction_counter(label: object) -> Any:
    return PREDICTIONS.labels(label=_label(label))


@cache
def _request_series(method: str, route: str, status: str) -> tuple[Any, Any]:
    labels = {"method": method, "route": route, "status": status}
    return REQUESTS.labels(**labels), LATENCY.labels(**labels)


def observe_prediction(label: object) -> None:
    """Count one prediction of `label` (a numpy scalar or a plain value)."""
    _prediction_counter(label).inc()


def observe_feedback(correct: bool, rows: int | None = None) -> None:
    """Count one stored feedback row; `correct` is prediction == target, `rows` the
    number of rows prod_data.csv holds after it."""
    FEEDBACK.labels(correct="true" if correct else "false").inc()
    if rows is not None:
        PROD_ROWS.set(rows)
    # One byte per outcome, appended: O_APPEND writes from several workers never interleave.
    try:
        fd = os.open(OUTCOMES_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"1" if correct else b"0")
        finally:
            os.close(fd)
    except OSError as exc:  # a metric must never fail the request that it counts
        log.warning("could not record a feedback outcome in %s: %s", OUTCOMES_FILE, exc)


def set_model_version(version: int) -> None:
    MODEL_VERSION.set(version)


def observe_retrain(seconds: float, version: int | None = None, success: bool = True) -> None:
    """Record one retraining: its duration and, when it succeeded, the new version."""
    RETRAINS.labels(outcome="success" if success else "failure").inc()
    if success:
        RETRAIN_SECONDS.observe(seconds)
        LAST_RETRAIN.set(time.time())
        if version is not None:
            set_model_version(version)


def recent_outcomes(window: int) -> bytes:
    """The last `window` feedback outcomes of this server run (b'1' correct, b'0' not)."""
    try:
        with open(OUTCOMES_FILE, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - window))
            return handle.read()
    except FileNotFoundError:
        return b""


class FeedbackAccuracyCollector(Collector):
    """Accuracy over the last N feedback rows of all workers, read at scrape time."""

    def __init__(self, window: int) -> None:
        self.window = window

    def collect(self) -> Iterator[GaugeMetricFamily]:
        outcomes = recent_outcomes(self.window)
        rows = GaugeMetricFamily(
            "mlstack_feedback_window_rows",
            "Feedback rows in the rolling accuracy window (at most its size)",
            labels=["window"],
        )
        rows.add_metric([str(self.window)], len(outcomes))
        yield rows
        if outcomes:
            accuracy = GaugeMetricFamily(
                "mlstack_feedback_accuracy",
                "Share of the latest feedback rows whose prediction matched the true label",
                labels=["window"],
            )
            accuracy.add_metric([str(self.window)], outcomes.count(b"1") / len(outcomes))
            yield accuracy


def build_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(MULTIPROC_DIR))
    registry.register(FeedbackAccuracyCollector(SETTINGS.accuracy_window))
    return registry


REGISTRY = build_registry()


def render() -> tuple[bytes, str]:
    """The text exposition of every worker's metrics, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


@atexit.register
def forget_this_worker() -> None:
    """Remove this process's live gauges (in-progress requests, model version), so
    that they stop counting once it ends. Called when the app's lifespan ends (uvicorn
    ends a worker on SIGTERM by raising the signal again, which skips atexit) and at exit."""
    multiprocess.mark_process_dead(os.getpid(), str(MULTIPROC_DIR))


# -- ASGI middleware ------------------------------------------------------------------
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route_of(scope: Scope, request: Scope, routes: Callable[[], list] | None) -> str:
    """The route template ('/items/{id}'), so that labels stay few. The router puts the
    route it chose in the scope for FastAPI's own routes; others (add_route, mounts)
    are matched here against the app's routes, with the request's original scope."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str) and path:
        return path
    from starlette.routing import Match

    for route in routes() if routes is not None else ():
        path = getattr(route, "path", None)
        if isinstance(path, str) and path and route.matches(request)[0] is not Match.NONE:
            return path
    return UNMATCHED


class PrometheusMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by route and status."""

    def __init__(self, app: ASGIApp, routes: Callable[[], list] | None = None) -> None:
        self.app = app
        self.routes = routes
        self._in_progress = {m: IN_PROGRESS.labels(method=m) for m in (*METHODS, "OTHER")}

    @staticmethod
    def _on_shutdown(send: Send) -> Send:
        async def send_wrapper(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                forget_this_worker()
            await send(message)

        return send_wrapper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._on_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        method = method if method in METHODS else "OTHER"  # any token is a valid method
        request = dict(scope)  # the router rewrites the scope; matching needs the original
        started = time.perf_counter()
        status = 500
        finished = False
        in_progress = self._in_progress[method]
        in_progress.inc()

        def finish() -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            requests, latency = _request_series(
                method, _route_of(scope, request, self.routes), str(status)
            )
            requests.inc()
            latency.observe(time.perf_counter() - started)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finish()

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            status = 500
            raise
        finally:
            finish()
            in_progress.dec()


def instrument(app: Any) -> Any:
    """Add the middleware and the metrics route to a Starlette/FastAPI app; returns it."""
    if getattr(app.state, "prometheus_instrumented", False):
        return app
    app.state.prometheus_instrumented = True
    app.add_middleware(PrometheusMiddleware, routes=lambda: app.routes)

    from starlette.requests import Request
    from starlette.responses import Response

    def metrics_endpoint(request: Request) -> Response:
        body, content_type = render()
        return Response(body, media_type=content_type)

    app.add_route(SETTINGS.path, metrics_endpoint, methods=["GET"], include_in_schema=False)
    return app
