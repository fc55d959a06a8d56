"""Serving replicas on one database: each its own empty DATA_DIR and ARTIFACTS_DIR (no
shared disk), the same DATABASE_URL; clients that spread feedback over them."""

from __future__ import annotations

import base64
import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from mlstack.settings import PipelineSettings
from mlstack.stores import copy_deployment

from tests.support.servers import UvicornServer


def replica(url: str, root: Path, index: int, k: int, **extra: str) -> UvicornServer:
    folder = root / f"replica-{index}"
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATA_DIR": str(folder / "data"),
        "ARTIFACTS_DIR": str(folder / "artifacts"),
        "DATABASE_URL": url,
        "RETRAIN_EVERY_K": str(k),
        "RETRAIN_WAIT_SECONDS": "0",
        "GATE": "false",
        "DB_POOL_SIZE": "4",
        **extra,
    }
    return UvicornServer("mlstack.serving.app:app", folder, env, folder / "uvicorn.log")


def start_replicas(url: str, root: Path, count: int, k: int, **extra: str) -> list[UvicornServer]:
    """The first alone (on an empty database it trains version 1), the others together."""
    servers = [replica(url, root, i, k, **extra) for i in range(count)]
    servers[0].start(timeout=300)
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(lambda s: s.start(timeout=300), servers[1:]))
    return servers


def seed(url: str, trained: PipelineSettings) -> None:
    """Version 1 and the reference files of the trained project, in the database."""
    copy_deployment(PipelineSettings(project_root=trained.project_root, database_url=url))


def images(server: UvicornServer) -> list[tuple[int, str]]:
    samples = Path(server.env["DATA_DIR"]) / "samples"
    return [
        (int(p.name.split("_")[0]), base64.b64encode(p.read_bytes()).decode())
        for p in sorted(samples.glob("*.png"))
    ]


def scalar(url: str, query: str):
    eng = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool
    )
    try:
        with eng.connect() as conn:
            return conn.execute(sa.text(query)).fetchall()
    finally:
        eng.dispose()


@dataclass
class Clients:
    """Threads posting feedback round-robin over `servers`; a 503 is retried with the
    same prediction_id (what a well-behaved client does), every other answer recorded."""

    servers: list[UvicornServer]
    samples: list[tuple[int, str]]
    acknowledged: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _count(self, status: int) -> None:
        with self._lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def post(self, client: httpx.Client, n: int, give_up_at: float) -> None:
        label, image = self.samples[n % len(self.samples)]
        body = {
            "image": image,
            "prediction": label,
            "target": label,
            "prediction_id": f"c{n:05d}{uuid.uuid4().hex[:8]}",
        }
        for attempt in itertools.count():
            server = self.servers[(n + attempt) % len(self.servers)]
            try:
                answer = client.post(server.url + "/feedback", json=body, timeout=30)
            except httpx.HTTPError:
                self._count(0)
            else:
                self._count(answer.status_code)
                if answer.status_code == 200 and answer.json()["stored"]:
                    with self._lock:
                        self.acknowledged.append(body["prediction_id"])
                    return
                assert answer.status_code == 503, answer.text
                assert "database" in answer.json()["detail"]
            if time.monotonic() > give_up_at:
                return
            time.sleep(0.2)

    def run(
        self,
        total: int,
        threads: int,
        timeout: float = 300,
        between: Callable[[int], None] | None = None,
    ) -> None:
        give_up_at = time.monotonic() + timeout
        with httpx.Client() as client, ThreadPoolExecutor(threads) as pool:

            def one(n: int) -> None:
                if between is not None:
                    between(n)
                self.post(client, n, give_up_at)

            list(pool.map(one, range(total)))
