"""Process targets of the fault tests, in a module of their own so that a spawned
child imports only the package, not the whole test suite."""

from __future__ import annotations

import time
from pathlib import Path

from mlstack.artifacts import ArtifactStore


def save_repeatedly(root: str, count: int, failures) -> None:
    """Write `count` new versions of the current set; count the saves that fail."""
    store = ArtifactStore(Path(root))
    current = store.load()
    for _ in range(count):
        try:
            store.save(current.embedding, current.classifier, rows={}, metrics={}, reason="x")
        except OSError:
            with failures.get_lock():
                failures.value += 1


def clean_repeatedly(root: str, stop) -> None:
    """What every worker does at start (bootstrap), over and over until told to stop."""
    store = ArtifactStore(Path(root))
    while not stop.is_set():
        store.clean_staging()
        time.sleep(0.002)
