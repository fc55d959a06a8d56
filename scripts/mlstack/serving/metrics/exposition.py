"""The /metrics page: every worker's files summed, plus the rolling feedback accuracy."""

from __future__ import annotations

from typing import Any

from .folder import multiproc_dir
from .outcomes import FeedbackAccuracyCollector
from .series import series


def build_registry(accuracy_window: int) -> Any:
    series()  # the folder chosen and the values file-backed before the library reads them
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(multiproc_dir()))
    registry.register(FeedbackAccuracyCollector(accuracy_window))
    return registry


def render(registry: Any) -> tuple[bytes, str]:
    """The text exposition of every worker's metrics, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry), CONTENT_TYPE_LATEST
