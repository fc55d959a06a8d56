"""SIGKILL in the middle of a retraining, under load, on the database backend: the
trainer worker, then a serving replica that retrains itself. No acknowledged row is
lost, no version is half-written (every stored version loads, its pickles verified),
the advisory lock dies with the killed process, and the cluster gets the retraining it
was owed by itself: a new trainer, or the replica restarted as an orchestrator would."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from mlstack.settings import PipelineSettings
from mlstack.stores import open_artifact_store

from tests.postgres.cluster import Clients, images, replica, scalar, seed, start_replicas
from tests.support.servers import Process, UvicornServer, wait_until

pytestmark = pytest.mark.slow

ROWS = 60


class Load:
    """Clients posting ROWS feedback rows over the replicas in a background thread."""

    def __init__(self, servers: list[UvicornServer]) -> None:
        self.clients = Clients(servers, images(servers[0]))
        self.failure: list[BaseException] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            self.clients.run(ROWS, threads=3, timeout=240, between=lambda _: time.sleep(0.15))
        except BaseException as exc:
            self.failure.append(exc)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.thread.join(300)

    def check(self, url: str) -> None:
        """Every acknowledged row is in the table, once; nothing else failed."""
        self.thread.join(300)
        assert not self.failure, self.failure
        assert self.clients.statuses.get(500, 0) == 0, self.clients.statuses
        acknowledged = set(self.clients.acknowledged)
        assert len(acknowledged) == ROWS
        stored = [row[0] for row in scalar(url, "SELECT prediction_id FROM prod_data")]
        assert len(stored) == len(set(stored))
        assert acknowledged <= set(stored)


def wait_for_line(process_log: Path, line: str, timeout: float = 120) -> None:
    wait_until(
        lambda: line in process_log.read_text(errors="replace"),
        timeout,
        f"{line!r} in {process_log.name}",
        every=0.05,
    )


def versions(url: str) -> list[int]:
    return [row[0] for row in scalar(url, "SELECT version FROM model_versions ORDER BY 1")]


def advisory_locks(url: str) -> int:
    return scalar(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")[0][0]


def every_version_loads(url: str, tmp: Path) -> None:
    store = open_artifact_store(PipelineSettings(project_root=tmp / "check", database_url=url))
    for version in store.versions():
        loaded = store.load(version)  # sha256 of each pickle checked against the manifest
        assert loaded.version == version


def serve_the_newest(servers: list[UvicornServer], url: str, newer_than: int) -> int:
    def all_on_it() -> int | None:
        current = scalar(url, "SELECT version FROM model_current")[0][0]
        served = {httpx.get(s.url + "/health", timeout=5).json()["model_version"] for s in servers}
        return current if current > newer_than and served == {current} else None

    return wait_until(all_on_it, 240, "every replica on a retrained version", every=0.5)


def trainer(url: str, tmp: Path, name: str) -> Process:
    env = dict(replica(url, tmp, 90, 5).env)  # a node of its own, empty folders
    folder = Path(env["DATA_DIR"]).parent
    return Process(
        [sys.executable, "-m", "mlstack.trainer"],
        cwd=folder,
        env={**os.environ, **env},
        log=folder / f"{name}.log",
    )


def test_the_trainer_killed_mid_retraining(postgres, trained, tmp_path):
    url = postgres.create_database()
    seed(url, trained)
    servers = start_replicas(url, tmp_path, 2, k=5, RETRAIN_IN_API="false")
    first = second = None
    try:
        with Load(servers) as load:
            first = trainer(url, tmp_path, "trainer-1")
            wait_for_line(first.log, "retraining due at")
            time.sleep(0.3)  # inside the training
            first.kill()  # SIGKILL
            assert "written in" not in first.output(), "the retraining ended before the kill"
            assert versions(url) == [1]
            # The database released the dead trainer's lock; nothing waits for a timeout.
            wait_until(lambda: advisory_locks(url) == 0, 30, "the lock released")
            second = trainer(url, tmp_path, "trainer-2")
            version = serve_the_newest(servers, url, newer_than=1)
        load.check(url)
        assert version >= 2
        every_version_loads(url, tmp_path)
        assert all("retraining: " not in s.log() for s in servers)
    finally:
        for process in (first, second):
            if process is not None:
                process.kill()
        for server in servers:
            server.kill()


def test_a_replica_killed_mid_retraining(postgres, trained, tmp_path):
    url = postgres.create_database()
    seed(url, trained)
    servers = start_replicas(url, tmp_path, 2, k=5)
    try:
        with Load(servers) as load:
            # The replica that took the 5th row retrains (in its own process, which dies
            # with it): kill that replica's whole process group mid-training.
            wait_until(
                lambda: [s for s in servers if "retraining: " in s.log()],
                120,
                "a replica retraining",
                every=0.05,
            )
            [killed] = [s for s in servers if "retraining: " in s.log()]
            time.sleep(0.5)  # inside the training
            assert versions(url) == [1], "the retraining ended before the kill"
            killed.kill()  # SIGKILL to the replica and its retraining process
            time.sleep(1.0)
            assert versions(url) == [1]
            wait_until(lambda: advisory_locks(url) == 0, 30, "the lock released")
            # Restarted (as Kubernetes or Compose would): it catches up what it owed.
            killed.start(timeout=300)
            version = serve_the_newest(servers, url, newer_than=1)
        load.check(url)
        assert version >= 2
        every_version_loads(url, tmp_path)
    finally:
        for server in servers:
            server.kill()
