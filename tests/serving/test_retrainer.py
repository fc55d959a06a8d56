"""The retrainer's coalescing, as one unit (the training itself and the cluster lock
replaced): a retraining asked for while another waits is owed as many rows as the
newest request, even when the run that serves it was queued by an older one.

On several replicas, the queued run of one replica skips a retraining another replica
already covered; it must compare the coverage with the newest row count asked of it,
not with the count of the request that first queued it (which left the last due
retraining of a load without a run: tests/postgres/test_cluster.py, now and then)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from mlstack.serving import retrainer as module
from mlstack.serving.retrainer import Retrainer
from mlstack.settings import ServingSettings


@dataclass
class Versions:
    """A store whose newest version was trained on `covered` feedback rows."""

    covered: int = 0

    def versions(self) -> list[int]:
        return [1]

    def manifest(self, _version: int) -> SimpleNamespace:
        return SimpleNamespace(rows={"prod_seen": self.covered})


@dataclass
class Holder:
    store: Versions = field(default_factory=Versions)
    model: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(version=1))


def test_a_queued_run_is_owed_the_newest_request(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    cluster_lock = threading.Lock()  # held by "another replica" while it trains
    trained: list[int] = []
    holder = Holder()

    def retrain_isolated(settings, reason, niceness):
        trained.append(int(reason.split()[0]))
        holder.store.covered = 60  # every row stored by the time it starts
        return SimpleNamespace(rejected=False, version=3)

    monkeypatch.setattr(module, "retrain_lock", lambda settings: cluster_lock)
    monkeypatch.setattr(module, "uses_database", lambda settings: True)
    monkeypatch.setattr(module, "retrain_isolated", retrain_isolated)
    retrainer = Retrainer(ServingSettings(project_root=tmp_path), holder)  # type: ignore[arg-type]
    try:
        cluster_lock.acquire()
        first = retrainer.submit(12)  # waits for the lock
        time.sleep(0.2)
        queued = retrainer.submit(24)  # queued behind it
        assert retrainer.submit(54) is queued  # coalesced into the queued run
        holder.store.covered = 50  # the other replica's run saw 50 rows
        cluster_lock.release()
        first.result(timeout=10)
        queued.result(timeout=10)
    finally:
        retrainer.shutdown()
    # 50 rows were covered, 54 were asked for: one more run, and only one.
    assert trained == [54]
    assert holder.store.covered >= 54
