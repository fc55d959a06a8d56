"""The database goes away under load and comes back: /predict keeps answering from the
model in memory, /feedback answers 503 (never 500, never a row acknowledged and lost),
/health says the database is down, and everything recovers by itself."""

from __future__ import annotations

import os
import sys
import threading
import time

import httpx
import pytest

from tests.postgres.cluster import Clients, images, replica, scalar, seed, start_replicas
from tests.support.servers import Process, wait_until

pytestmark = pytest.mark.slow

ROWS = 120


def test_database_restart_under_load(own_postgres, trained, tmp_path):
    url = own_postgres.create_database()
    seed(url, trained)
    servers = start_replicas(url, tmp_path, 2, k=1000)
    samples = images(servers[0])
    clients = Clients(servers, samples)
    failure: list[BaseException] = []

    def load() -> None:
        try:
            clients.run(ROWS, threads=4, timeout=120, between=lambda _: time.sleep(0.1))
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=load)
    try:
        worker.start()
        wait_until(lambda: len(clients.acknowledged) >= 20, 60, "feedback before the outage")
        own_postgres.stop("fast")
        stopped = time.monotonic()
        label, image = samples[0]
        for server in servers:
            health = wait_until(
                lambda s=server: (
                    (h := httpx.get(s.url + "/health", timeout=5)).json().get("database") == "down"
                    and h
                ),
                5,
                "/health to say the database is down",
            )
            assert health.status_code == 200
            predicted = httpx.post(server.url + "/predict", json={"image": image}, timeout=10)
            assert predicted.status_code == 200, predicted.text
            refused = httpx.post(
                server.url + "/feedback",
                json={"image": image, "prediction": label, "target": label},
                timeout=10,
            )
            assert refused.status_code == 503, refused.text
            assert "database" in refused.json()["detail"]
            assert refused.headers["retry-after"]
        time.sleep(max(0.0, 3 - (time.monotonic() - stopped)))
        own_postgres.start()
        for server in servers:
            wait_until(
                lambda s=server: httpx.get(s.url + "/health").json()["database"] == "ok",
                15,
                "/health to say the database is back",
            )
        worker.join(150)
        assert not worker.is_alive()
        assert not failure, failure
        # Every request was acknowledged in the end; every acknowledged row is stored, once.
        assert clients.statuses[200] == ROWS
        assert clients.statuses.get(503, 0) > 0
        assert set(clients.statuses) <= {200, 503, 0}
        ids = [r[0] for r in scalar(url, "SELECT prediction_id FROM prod_data ORDER BY seq")]
        assert sorted(ids) == sorted(clients.acknowledged)
        seqs = [r[0] for r in scalar(url, "SELECT seq FROM prod_data ORDER BY seq")]
        assert seqs == list(range(1, ROWS + 1))
        print(f"answers during the run: {clients.statuses}")
    finally:
        worker.join(5)
        for server in servers:
            server.kill()


def test_a_trainer_worker_retrains_and_the_replicas_never_do(postgres, trained, tmp_path):
    url = postgres.create_database()
    seed(url, trained)
    servers = start_replicas(url, tmp_path, 2, k=3, RETRAIN_IN_API="false")
    trainer = None
    try:
        label, image = images(servers[0])[0]
        answers = [
            httpx.post(
                servers[i % 2].url + "/feedback",
                json={"image": image, "prediction": label, "target": label},
                timeout=30,
            ).json()
            for i in range(3)
        ]
        assert [a["retraining"] for a in answers] == ["none", "none", "queued"]
        time.sleep(1.5)
        assert {httpx.get(s.url + "/health").json()["model_version"] for s in servers} == {1}
        env = dict(replica(url, tmp_path, 9, 3).env)  # a node of its own, empty folders
        folder = tmp_path / "replica-9"
        trainer = Process(
            [sys.executable, "-m", "mlstack.trainer"],
            cwd=folder,
            env={**os.environ, **env},
            log=folder / "trainer.log",
        )
        for server in servers:
            wait_until(
                lambda s=server: httpx.get(s.url + "/health").json()["model_version"] == 2,
                180,
                "the worker's version on every replica",
            )
        assert all("retraining: " not in s.log() for s in servers)
        assert "retraining due at 3 feedback rows" in trainer.output()
    finally:
        if trainer is not None:
            trainer.stop()
        for server in servers:
            server.kill()
