"""The trainer worker: retrainings run here, so the serving replicas never train.

    python -m mlstack.trainer          (or: python scripts/train.py --worker)

Set RETRAIN_IN_API=false on the API: it then only records the retrainings its
triggers ask for (with DATABASE_URL, in the table retrain_requests, once per trigger
and row count cluster-wide) and answers `"retraining": "queued"`. Every
TRAINER_POLL_SECONDS this worker compares them with the newest version's prod_seen
(the feedback rows it was trained on): a request above it is due. The every-k rule is
also checked from the row count itself (rows // k * k above prod_seen), so a request
lost while the database was away, or the file backend, still gets its retraining.

One retraining at a time cluster-wide: the same lock as the API's (a PostgreSQL
advisory lock, released by the database if this process dies mid-training; a file
lock with the file backend). Requests that fall due while one runs coalesce: the next
run trains on every row stored by then, and covers them all.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from typing import Any

from .artifacts import Manifest
from .errors import DatabaseUnavailableError
from .logs import setup_logging
from .pipeline import bootstrap
from .retraining import retrain
from .settings import ServingSettings
from .stores import (
    bootstrap_lock,
    open_artifact_store,
    open_prod_store,
    retrain_lock,
)

log = logging.getLogger("trainer")


def covered(store: Any) -> int:
    """Feedback rows the newest version (live or rejected) was trained on."""
    versions = store.versions()
    return store.manifest(versions[-1]).rows.get("prod_seen", 0) if versions else 0


def due(settings: ServingSettings, prod: Any, store: Any) -> tuple[int, str] | None:
    """(row count, reason) of the retraining to run now, or None."""
    seen = covered(store)
    pending = getattr(prod, "pending_retrain", None)
    found = pending(seen) if pending is not None else None
    if found is not None:
        return found
    if "every_k" in settings.retrain_policy:
        k = settings.retrain_every_k
        rows = prod.rows() // k * k
        if rows > seen:
            return rows, f"{rows} feedback rows"
    return None


def run_once(settings: ServingSettings, prod: Any, store: Any, lock: Any) -> Manifest | None:
    """Run the due retraining, if any; returns the version it wrote."""
    if due(settings, prod, store) is None:
        return None
    with lock:
        found = due(settings, prod, store)  # another trainer may have run it meanwhile
        if found is None:
            return None
        rows, reason = found
        log.info("retraining due at %d feedback rows (%s)", rows, reason)
        started = time.perf_counter()
        manifest = retrain(settings, reason=reason)
        log.info(
            "version %d written in %.1fs (%s)",
            manifest.version,
            time.perf_counter() - started,
            "rejected by the gate" if manifest.rejected else "live",
        )
        return manifest


def run(settings: ServingSettings, stop: threading.Event) -> None:
    with bootstrap_lock(settings):
        bootstrap(settings)
    store = open_artifact_store(settings)
    prod = open_prod_store(settings, store.manifest().n_components)
    lock = retrain_lock(settings)
    log.info(
        "trainer worker: %s, retraining on %s (k = %d), checking every %gs",
        store,
        ", ".join(settings.retrain_policy),
        settings.retrain_every_k,
        settings.trainer_poll_seconds,
    )
    while not stop.is_set():
        try:
            run_once(settings, prod, store, lock)
        except DatabaseUnavailableError as exc:
            log.warning("%s: trying again", exc)
            stop.wait(2.0)
        except Exception:
            log.exception("retraining failed; the previous model stays in use")
            stop.wait(30.0)  # not in a tight loop on a failure that will recur
        stop.wait(settings.trainer_poll_seconds)
    log.info("trainer worker stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    setup_logging()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(ServingSettings(), stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
