"""The rolling feedback accuracy: one byte per stored feedback row in a file of the
metrics folder, appended by every worker, read at scrape time by a collector."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .folder import multiproc_dir

log = logging.getLogger("serving.metrics")


def outcomes_file() -> Path:
    return multiproc_dir() / "feedback_outcomes.bin"


def record_outcome(correct: bool) -> None:
    """Append b'1' (right) or b'0': O_APPEND writes from several workers never interleave."""
    path = outcomes_file()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"1" if correct else b"0")
        finally:
            os.close(fd)
    except OSError as exc:  # a metric must never fail the request that it counts
        log.warning("could not record a feedback outcome in %s: %s", path, exc)


def recent_outcomes(window: int) -> bytes:
    """The last `window` feedback outcomes of this server run (b'1' correct, b'0' not)."""
    try:
        with open(outcomes_file(), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - window))
            return handle.read()
    except FileNotFoundError:
        return b""


class FeedbackAccuracyCollector:
    """Accuracy over the last N feedback rows of all workers, read at scrape time (a
    prometheus_client collector: an object with collect())."""

    def __init__(self, window: int) -> None:
        self.window = window

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

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
