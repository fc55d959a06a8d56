"""Three serving replicas on one PostgreSQL, no shared disk: rows in the table equal the
acknowledged requests, the every-k trigger fires once per k rows cluster-wide, one
retraining at a time, and every replica follows each new version and a rollback without a
restart (its delay printed: about half a second, the version's cache time, plus the
model's load; the bound is loose, for a busy machine)."""

from __future__ import annotations

import itertools
import threading
import time

import httpx
import pytest
from mlstack.settings import PipelineSettings
from mlstack.stores import open_artifact_store

from tests.postgres.cluster import Clients, images, scalar, start_replicas
from tests.support.servers import wait_until

pytestmark = pytest.mark.slow

K = 6
ROWS = 60
LAG_BOUND = 10.0  # seconds: a replica that does not follow never gets there


class VersionWatch:
    """When each version became current in the database, and when each replica first
    served it (polled every 50 ms)."""

    def __init__(self, url: str, servers: list) -> None:
        self.url, self.servers = url, servers
        self.current: dict[int, float] = {}
        self.served: list[dict[int, float]] = [{} for _ in servers]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._db, daemon=True)] + [
            threading.Thread(target=self._replica, args=(i,), daemon=True)
            for i in range(len(servers))
        ]

    def _db(self) -> None:
        store = open_artifact_store(PipelineSettings(database_url=self.url))
        while not self._stop.is_set():
            version = store._fetch_current()
            self.current.setdefault(version, time.monotonic())
            time.sleep(0.05)

    def _replica(self, i: int) -> None:
        with httpx.Client() as client:
            while not self._stop.is_set():
                try:
                    version = client.get(self.servers[i].url + "/health", timeout=5).json()[
                        "model_version"
                    ]
                    self.served[i].setdefault(version, time.monotonic())
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)

    def __enter__(self) -> VersionWatch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def lags(self) -> dict[int, list[float]]:
        """Per version current for at least LAG_BOUND: each replica's delay in serving it."""
        ordered = sorted(self.current.items(), key=lambda item: item[1])
        out = {}
        for (version, since), nxt in zip(
            ordered, [*ordered[1:], (None, time.monotonic())], strict=True
        ):
            if nxt[1] - since >= LAG_BOUND:
                out[version] = [served.get(version, float("inf")) - since for served in self.served]
        return out


def test_three_replicas_share_feedback_versions_and_retraining(postgres, tmp_path):
    url = postgres.create_database()
    servers = start_replicas(url, tmp_path, 3, K)
    try:
        # One replica trained version 1 (empty database); the others fetched it.
        logs = [s.log() for s in servers]
        assert sum("building reference data and training" in log for log in logs) == 1
        assert {httpx.get(s.url + "/health").json()["database"] for s in servers} == {"ok"}
        clients = Clients(servers, images(servers[0]))
        with VersionWatch(url, servers) as watch:
            # About 8 rows a second: retrainings (a few seconds each) overlap the load.
            clients.run(ROWS, threads=4, between=lambda _: time.sleep(0.5))
            assert clients.statuses == {200: ROWS}
            due = ROWS // K * K
            # Retrainings finish: the newest version was trained on every due row.
            store = open_artifact_store(PipelineSettings(database_url=url))

            def settled() -> bool:
                newest = store.manifest(store.versions()[-1])
                return newest.rows["prod_seen"] >= due and store.current_version() == newest.version

            wait_until(settled, 300, "the retrainings to cover every due row", every=0.5)
            time.sleep(LAG_BOUND + 0.5)  # the last version lasts: served everywhere
        # Rows in the table = acknowledged requests, each once, counted by the database.
        ids = [r[0] for r in scalar(url, "SELECT prediction_id FROM prod_data ORDER BY seq")]
        assert sorted(ids) == sorted(clients.acknowledged)
        assert len(ids) == ROWS
        assert [r[0] for r in scalar(url, "SELECT seq FROM prod_data ORDER BY seq")] == list(
            range(1, ROWS + 1)
        )
        assert scalar(url, "SELECT rows FROM prod_counter")[0][0] == ROWS
        # The every-k trigger fired exactly once per k rows, cluster-wide.
        fired = [r[0] for r in scalar(url, "SELECT rows FROM retrain_requests ORDER BY rows")]
        assert fired == list(range(K, ROWS + 1, K))
        # One retraining at a time: each version trained from the one before it, each on
        # more rows, each covering at least one due point no earlier one covered.
        # Points that fell due while one ran coalesce into the next run.
        history = store.history()
        seen = [h["rows"]["prod_seen"] for h in history]
        parents = [store.manifest(h["version"]).parent_version for h in history]
        assert parents == [None, *range(1, len(history))]
        for before, after in itertools.pairwise(seen):
            assert any(before < point <= after for point in fired), seen
        retrainings = len(history) - 1
        assert 1 <= retrainings <= len(fired)
        print(f"{len(fired)} due points, {retrainings} retrainings; prod_seen {seen}")
        # Every replica served each lasting version soon after its activation.
        lags = watch.lags()
        assert history[-1]["version"] in lags
        for version, delays in lags.items():
            assert max(delays) <= LAG_BOUND, (version, delays)
        print(
            "delays to serve each version:",
            {v: [round(d, 2) for d in ds] for v, ds in lags.items()},
        )
        # A rollback on one replica reaches the others.
        started = time.monotonic()
        answer = httpx.post(servers[0].url + "/model/rollback", json={"version": 1})
        assert answer.status_code == 200, answer.text
        for server in servers[1:]:
            wait_until(
                lambda s=server: httpx.get(s.url + "/health").json()["model_version"] == 1,
                LAG_BOUND,
                "the rollback on every replica",
                every=0.05,
            )
        print(f"rollback served everywhere after {time.monotonic() - started:.2f}s")
    finally:
        for server in servers:
            server.kill()
