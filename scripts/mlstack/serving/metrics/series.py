"""The metrics of the serving API, created on first use, file-backed in the folder of
`folder.multiproc_dir()` so that /metrics sums every worker's values."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from .folder import multiproc_dir

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RETRAIN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def _file_backed_values() -> None:
    """Make every value of a metric one of values.py's: file-backed in the folder, so
    that /metrics sums every worker's, and written without a lock per write.
    prometheus_client reads `values.ValueClass` whenever a metric or a labelled series
    is made, so this applies even if another module imported the library first."""
    from prometheus_client import values

    from .values import ShardedValue

    values.ValueClass = ShardedValue


@dataclass(frozen=True)
class Series:
    requests: Any
    latency: Any
    in_progress: Any
    predictions: Any
    feedback: Any
    prod_rows: Any
    model_version: Any
    retrains: Any
    retrain_seconds: Any
    last_retrain: Any
    triggers: Any
    gate: Any
    unknown_categories: Any


@cache
def series() -> Series:
    """Every metric of the API, made once per process, after its folder is chosen."""
    multiproc_dir()
    _file_backed_values()
    from prometheus_client import Counter, Gauge, Histogram

    route = ["method", "route", "status"]
    # registry=None: /metrics reads every worker's files (registry.py), not this process.
    return Series(
        requests=Counter(
            "mlstack_http_requests",
            "HTTP requests answered, by method, route template and status code",
            route,
            registry=None,
        ),
        latency=Histogram(
            "mlstack_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response body",
            route,
            buckets=LATENCY_BUCKETS,
            registry=None,
        ),
        in_progress=Gauge(
            "mlstack_http_requests_in_progress",
            "Requests being handled now, all workers together",
            ["method"],
            multiprocess_mode="livesum",
            registry=None,
        ),
        predictions=Counter(
            "mlstack_predictions",
            "Predictions served, by predicted label",
            ["label"],
            registry=None,
        ),
        feedback=Counter(
            "mlstack_feedback",
            "Feedback rows stored, by whether the prediction matched the true label",
            ["correct"],
            registry=None,
        ),
        prod_rows=Gauge(
            "mlstack_prod_data_rows",
            "Rows in prod_data.csv after the latest stored feedback",
            multiprocess_mode="mostrecent",
            registry=None,
        ),
        model_version=Gauge(
            "mlstack_model_version",
            "Version of the model in use (the one set most recently by a live worker)",
            multiprocess_mode="livemostrecent",
            registry=None,
        ),
        retrains=Counter("mlstack_retrains", "Retrainings, by outcome", ["outcome"], registry=None),
        retrain_seconds=Histogram(
            "mlstack_retrain_duration_seconds",
            "Wall-clock time of successful retrainings",
            buckets=RETRAIN_BUCKETS,
            registry=None,
        ),
        last_retrain=Gauge(
            "mlstack_last_retrain_timestamp_seconds",
            "Unix time at which the latest successful retraining ended",
            multiprocess_mode="max",
            registry=None,
        ),
        triggers=Counter(
            "mlstack_retrain_triggers",
            "Checks of the retraining triggers, by trigger and whether it fired",
            ["trigger", "fired"],
            registry=None,
        ),
        gate=Counter(
            "mlstack_gate_decisions",
            "Promotion-gate decisions on retrained candidates",
            ["decision"],
            registry=None,
        ),
        unknown_categories=Counter(
            "mlstack_unknown_categories",
            "A table model's rows holding a category never seen in training, by column",
            ["column"],
            registry=None,
        ),
    )


def _label(value: object) -> str:
    return str(value.item() if hasattr(value, "item") else value)


# The labelled series are looked up once: labels() takes a lock and checks its
# arguments on every call. Their keys are few (labels, route templates, statuses).
@cache
def prediction_counter(label: object) -> Any:
    return series().predictions.labels(label=_label(label))


@cache
def request_series(method: str, route: str, status: int) -> tuple[Any, Any]:
    labels = {"method": method, "route": route, "status": str(status)}
    metrics = series()
    return metrics.requests.labels(**labels), metrics.latency.labels(**labels)
