"""Retraining off the request path.

A background thread per worker starts each retraining in a separate process at a lower
CPU priority (the workers keep their CPU and interpreter lock for requests), and a file
lock makes retrainings one at a time across all workers (with DATABASE_URL, an advisory
lock in PostgreSQL, across every replica: mlstack.stores.retrain_lock). The retraining process dies
with the worker that started it (mlstack.orphans), and the artifact store refuses a
version trained on a base older than the one in use, so a worker killed mid-retraining
can never leave behind a process that later activates a stale model.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mlstack.artifacts import Manifest
from mlstack.prod_store import ProdDataStore
from mlstack.retraining import retrain_isolated
from mlstack.settings import ServingSettings
from mlstack.stores import retrain_lock, uses_database

from . import metrics
from .holder import ModelHolder

log = logging.getLogger("serving")


@dataclass
class Retrainer:
    settings: ServingSettings
    holder: ModelHolder
    _executor: ThreadPoolExecutor = field(init=False)
    _lock: Any = field(init=False)
    _pending: int = field(default=0, init=False)
    _queued: Future | None = field(default=None, init=False)
    _wanted: int = field(default=0, init=False)  # the most rows any retraining was asked for
    _count: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrain")
        self._lock = retrain_lock(self.settings)
        # Replicas share the versions: a retraining another replica already ran on these
        # rows (its version saw at least as many) is not run again.
        self._cluster = uses_database(self.settings)

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def submit(
        self, rows: int, reason: str | None = None, *, only_if_missed: bool = False
    ) -> Future[Manifest | None]:
        """Retrain once the running retraining (if any) is done. Retrainings that fall
        due meanwhile coalesce: they all get the one queued run, which trains on every
        row stored by the time it starts."""
        with self._count:
            # A coalesced request is owed as much as the queued run: the run checks this
            # high-water mark, not the row count of the request that queued it.
            self._wanted = max(self._wanted, rows)
            if self._queued is not None:
                return self._queued
            self._pending += 1
            job = self._executor.submit(self._run, rows, reason, only_if_missed)
            if self._pending > 1:
                self._queued = job
            return job

    def _covered(self) -> int:
        """prod_data.csv rows the newest version (live or rejected) was trained on."""
        store = self.holder.store
        versions = store.versions()
        return store.manifest(versions[-1]).rows.get("prod_seen", 0) if versions else 0

    def _run(self, rows: int, reason: str | None, only_if_missed: bool) -> Manifest | None:
        with self._count:
            if self._queued is not None and self._queued.running():
                self._queued = None  # running now: a retraining due from here queues anew
            rows = max(rows, self._wanted)
        try:
            with self._lock:  # across workers: one retraining at a time
                if (only_if_missed or self._cluster) and self._covered() >= rows:
                    return None
                started = time.perf_counter()
                log.info("retraining: prod_data.csv reached %d rows (%s)", rows, reason or "due")
                manifest = retrain_isolated(
                    self.settings, reason or f"{rows} feedback rows", self.settings.retrain_niceness
                )
                self.holder.model  # noqa: B018  (swap to the new version now, not at the next request)
                metrics.observe_retrain(time.perf_counter() - started, self.holder.model.version)
                metrics.observe_gate(not manifest.rejected)
                return manifest
        except Exception:
            metrics.observe_retrain(0.0, success=False)
            log.exception("retraining at %d rows failed; the previous model stays in use", rows)
            raise
        finally:
            with self._count:
                self._pending -= 1

    def catch_up(self, prod: ProdDataStore) -> Future | None:
        """After a crash during a retraining, the row that triggered it is stored but
        no model covers it: train once at start."""
        k = self.settings.retrain_every_k
        due = prod.rows() // k * k
        if "every_k" in self.settings.retrain_policy and due and self._covered() < due:
            log.info("the retraining due at %d rows did not happen: starting it now", due)
            return self.submit(due, only_if_missed=True)
        return None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
