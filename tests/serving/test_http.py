"""The serving API as it runs in production: a real uvicorn process (one or two
workers) on loopback, driven over HTTP."""

from __future__ import annotations

import csv
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from mlstack.artifacts import ArtifactStore
from mlstack.fake_feedback import write_fake_feedback
from mlstack.prod_store import ProdDataStore, prod_columns
from mlstack.settings import PipelineSettings

from tests.support.servers import Process, UvicornServer, free_port
from tests.support.serving import b64, sample_images, serving_env

pytestmark = pytest.mark.timeout(300)


def feedback_body(label: int, data: bytes) -> dict:
    return {"image": b64(data), "prediction": label, "target": label}


def read_prod(settings: PipelineSettings) -> list[list[str]]:
    with open(settings.prod_data_path, newline="") as handle:
        return list(csv.reader(handle))


def test_each_worker_caps_numpy_blas_threads(project: PipelineSettings, serve) -> None:
    """A retrained SVC with thousands of support vectors is large enough for OpenBLAS to
    start threads on each product; with two workers on two cores they took /predict
    from about 1,800 down to about 270 requests/s (docs/serving.md). The count in the
    log is read back from the library."""
    for threads in (1, 2):
        server = serve(project, workers=2, BLAS_THREADS=str(threads))
        label, data = sample_images(project)[3]
        answer = httpx.post(f"{server.url}/predict", json={"image": b64(data)}, timeout=30)
        assert answer.json()["prediction"] == label
        line = f"numpy's BLAS: {threads} thread(s) in this worker"
        deadline = time.monotonic() + 60  # the second worker may still be starting
        while server.log().count(line) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        server.kill()
        assert server.log().count(line) == 2, server.log()


def test_kth_feedback_is_served_by_every_worker(project: PipelineSettings, serve) -> None:
    server = serve(project, workers=2, k=4)
    label, data = sample_images(project)[11]
    answers = [
        httpx.post(f"{server.url}/feedback", json=feedback_body(label, data), timeout=60).json()
        for _ in range(4)
    ]
    assert [a["retrained"] for a in answers] == [False, False, False, True]
    assert answers[-1]["model_version"] == 2
    # A fresh connection per request: both workers answer; each must serve version 2.
    versions = {
        httpx.post(f"{server.url}/predict", json={"image": b64(data)}, timeout=30).json()[
            "model_version"
        ]
        for _ in range(30)
    }
    assert versions == {2}
    assert (project.artifacts_dir / "model.pkl").resolve().parent.name == "000002"


def test_concurrent_feedback_with_two_workers_loses_no_row(
    project: PipelineSettings, serve
) -> None:
    k, clients, per_client = 10, 12, 10
    server = serve(project, workers=2, k=k)
    samples = sample_images(project)

    def post_many(client_id: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for i in range(per_client):
                label, data = samples[(client_id * per_client + i) % len(samples)]
                answer = client.post("/feedback", json=feedback_body(label, data))
                statuses.append(answer.status_code)
                # Bad input mixed in: refused, and nothing written.
                bad = client.post("/feedback", json={**feedback_body(label, data), "target": 99})
                statuses.append(bad.status_code)
        return statuses

    with ThreadPoolExecutor(clients) as pool:
        statuses = [s for batch in pool.map(post_many, range(clients)) for s in batch]
    accepted = statuses.count(200)
    assert accepted == clients * per_client
    assert statuses.count(422) == clients * per_client
    assert not [s for s in statuses if s >= 500]

    rows = read_prod(project)
    header, body = rows[0], rows[1:]
    assert header == prod_columns(len(header) - 5)
    assert len(body) == accepted
    assert all(len(row) == len(header) for row in body)
    assert len({row[-1] for row in body}) == accepted  # every prediction_id once
    assert ProdDataStore(project.prod_data_path, len(header) - 5).rows() == accepted

    # Retrainings one at a time across both workers; those that fall due while one runs
    # coalesce into one more run, so there are at most accepted // k of them, and the
    # newest has trained on every row.
    store = ArtifactStore(project.artifacts_dir)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        history = store.history()
        if history[-1]["rows"].get("prod_seen") == accepted:
            break
        time.sleep(0.2)
    history = store.history()
    assert [h["version"] for h in history] == list(range(1, len(history) + 1))
    assert 2 <= len(history) <= 1 + accepted // k
    assert history[-1]["rows"]["prod_seen"] == accepted
    seen = [h["rows"]["prod_seen"] for h in history[1:]]
    assert seen == sorted(seen)  # one at a time: each saw at least what the one before saw
    for h in history[1:]:  # each retraining saw at least the rows that triggered it
        assert h["rows"]["prod_seen"] >= int(h["reason"].split()[0])


def wait_for_log(server, words: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while words not in server.log():
        assert time.monotonic() < deadline, f"never logged {words!r}:\n{server.log()}"
        time.sleep(0.05)


def test_sigkill_during_a_retrain_loses_nothing(project: PipelineSettings, serve) -> None:
    k = 20_000
    write_fake_feedback(project, k - 1, drift=0.3, predicted=False)  # retrains on ~20k rows next
    server = serve(project, workers=1, k=k, RETRAIN_WAIT_SECONDS="0")
    label, data = sample_images(project)[5]
    answer = httpx.post(f"{server.url}/feedback", json=feedback_body(label, data), timeout=60)
    assert (
        answer.json().items()
        >= {
            "stored": True,
            "rows": k,
            "retrained": False,
            "retraining": "running",
            "model_version": 1,
        }.items()
    )
    wait_for_log(server, f"retraining: prod_data.csv reached {k} rows")
    time.sleep(0.3)
    server.kill(signal.SIGKILL)

    store = ArtifactStore(project.artifacts_dir)
    assert store.current_version() == 1, "the retraining finished before the kill: test is void"
    assert store.load().version == 1  # a complete, verified set
    assert ProdDataStore(project.prod_data_path, 30).rows() == k

    # Restart: the missed retraining is caught up, the row is there, no staging left.
    server.start()
    wait_for_log(server, f"the retraining due at {k} rows did not happen")
    deadline = time.monotonic() + 120
    while httpx.get(f"{server.url}/model", timeout=10).json()["manifest"]["version"] != 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.5)
    assert store.load().manifest.rows["prod_seen"] == k
    assert not list((project.artifacts_dir / "versions").glob(".tmp-*"))
    rows = read_prod(project)
    assert len(rows) == k + 1
    assert not rows[-1][-1].startswith("fake-")  # the accepted row survived


def test_a_torn_last_line_is_repaired_at_start(project: PipelineSettings, serve) -> None:
    label, data = sample_images(project)[2]
    server = serve(project, workers=1, k=50)
    for _ in range(3):
        httpx.post(f"{server.url}/feedback", json=feedback_body(label, data), timeout=30)
    server.kill(signal.SIGKILL)
    path: Path = project.prod_data_path
    with open(path, "ab") as handle:  # what a crash in the middle of a write would leave
        handle.write(b"0.123,0.456,0.7")
    server.start()
    assert "cut a torn last line" in server.log()
    answer = httpx.post(f"{server.url}/feedback", json=feedback_body(label, data), timeout=30)
    assert answer.json()["rows"] == 4
    rows = read_prod(project)
    assert len(rows) == 5
    assert all(len(row) == len(rows[0]) for row in rows)


def test_the_api_runs_from_anywhere(project: PipelineSettings, tmp_path: Path) -> None:
    """`uvicorn mlstack.serving.app:app` and `python -m mlstack.serving`, started outside
    serving/ (the installed package, no path set up)."""
    env = serving_env(project)
    server = UvicornServer("mlstack.serving.app:app", tmp_path, env, tmp_path / "uvicorn.log")
    try:
        assert httpx.get(f"{server.start().url}/health", timeout=30).json()["model_version"] == 1
    finally:
        server.stop()
    port = free_port()
    args = ["--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    process = Process(
        [sys.executable, "-m", "mlstack.serving", *args],
        cwd=tmp_path,
        env=env,
        log=tmp_path / "main.log",
    )
    try:
        process.wait_healthy(f"http://127.0.0.1:{port}/health")
        assert "Started parent process" in process.output()  # two workers under uvicorn
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        assert "mlstack_model_version 1.0" in metrics
    finally:
        process.stop()
