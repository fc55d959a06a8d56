"""What the app records, in one call each:

set_model_version(version)           # when a model is loaded or swapped
observe_prediction(label)            # after each /predict
observe_predictions(labels)          # after a batched /predict: one per image predicted
observe_feedback(correct, rows=rows) # after each stored /feedback row
observe_retrain(seconds, version)    # after each retraining
observe_gate(accepted)               # the promotion gate's decision on it
observe_trigger(trigger, fired)      # each check of a retraining trigger
observe_unknown_categories(unknown)  # a table row with categories unseen in training
"""

from __future__ import annotations

import time

from .outcomes import record_outcome
from .series import prediction_counter, series


def observe_prediction(label: object) -> None:
    """Count one prediction of `label` (a numpy scalar or a plain value)."""
    prediction_counter(label).inc()


def observe_predictions(labels: list[object]) -> None:
    """Count the predictions of a batch, one per image: the predictions counter counts
    images, the request counter requests."""
    for label in labels:
        prediction_counter(label).inc()


def observe_feedback(correct: bool, rows: int | None = None) -> None:
    """Count one stored feedback row; `correct` is prediction == target, `rows` the
    number of rows prod_data.csv holds after it."""
    metrics = series()
    metrics.feedback.labels(correct="true" if correct else "false").inc()
    if rows is not None:
        metrics.prod_rows.set(rows)
    record_outcome(correct)


def set_model_version(version: int) -> None:
    series().model_version.set(version)


def observe_retrain(seconds: float, version: int | None = None, success: bool = True) -> None:
    """Record one retraining: its duration and, when it succeeded, the new version."""
    metrics = series()
    metrics.retrains.labels(outcome="success" if success else "failure").inc()
    if success:
        metrics.retrain_seconds.observe(seconds)
        metrics.last_retrain.set(time.time())
        if version is not None:
            set_model_version(version)


def observe_gate(accepted: bool) -> None:
    series().gate.labels(decision="accepted" if accepted else "rejected").inc()


def observe_trigger(trigger: str, fired: bool) -> None:
    series().triggers.labels(trigger=trigger, fired="true" if fired else "false").inc()


def observe_unknown_categories(unknown: dict[str, str]) -> None:
    """Count a table row's categories never seen in training, one per column (the
    column names are the schema's, so the series stay few)."""
    for column in unknown:
        series().unknown_categories.labels(column=column).inc()
