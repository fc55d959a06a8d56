"""Faults: the serving process is SIGKILLed at random moments, while rows are being
appended and while the model retrains, several times in a row. After every restart
the artifacts are a complete verified set, prod_data.csv has no partial line, and no
row that got a 200 is lost.

(A torn last line left by a crash is cut at start with a log line:
tests/serving/test_http.py covers it.)"""

from __future__ import annotations

import multiprocessing
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from mlstack.artifacts import ArtifactError, ArtifactStore
from mlstack.settings import PipelineSettings

from tests.reliability.conftest import malformed_rows, prediction_ids, record_figures
from tests.reliability.workers import clean_repeatedly, save_repeatedly
from tests.support.serving import b64, sample_images

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

SEED = 20261126
ROUNDS = 5
K = 25
CLIENTS = 4
SAVES = 30
RETRAIN_LOG = "retraining: prod_data.csv reached"


def post_until_killed(
    url: str, samples, tag: str, ready: threading.Barrier, stop: threading.Event
) -> tuple[list, list]:
    """Send feedback until the server dies; returns (sent ids, accepted ids)."""
    sent, accepted = [], []
    rng = random.Random(tag)
    with httpx.Client(base_url=url, timeout=30) as client:
        ready.wait()
        for i in range(10_000):
            if stop.is_set():
                break
            label, data = rng.choice(samples)
            pid = f"{tag}n{i}"
            sent.append(pid)
            body = {"image": b64(data), "prediction": label, "target": label, "prediction_id": pid}
            try:
                answer = client.post("/feedback", json=body)
            except httpx.HTTPError:
                break  # killed: this row was in flight, it may or may not be stored
            if answer.status_code == 200:
                accepted.append(pid)
            else:
                raise AssertionError(f"{pid}: {answer.status_code} {answer.text}")
    return sent, accepted


def retraining(server, log_offset: int) -> bool:
    """Whether a retraining started in this server run has not finished."""
    run_log = server.log()[log_offset:]
    return run_log.count(RETRAIN_LOG) > run_log.count("retrained on") + run_log.count(
        "retraining at"  # "... failed"
    )


def wait_until_no_retraining(server, log_offset: int) -> None:
    deadline = time.monotonic() + 60
    while retraining(server, log_offset):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


def wait_for_workers(server, log_offset: int, workers: int) -> None:
    deadline = time.monotonic() + 120
    while server.log()[log_offset:].count("Application startup complete") < workers:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


def test_sigkill_at_random_moments_loses_no_accepted_row(project: PipelineSettings, serve) -> None:
    rng = random.Random(SEED)
    samples = sample_images(project)
    store = ArtifactStore(project.artifacts_dir)
    labels = {str(c) for c in store.manifest().classes}
    server = serve(project, workers=2, k=K, RETRAIN_WAIT_SECONDS="0")
    all_sent: set[str] = set()
    all_accepted: list[str] = []
    rounds = []

    log_offset = 0  # where the current server run's lines start in the log
    for n in range(ROUNDS):
        mode = "retrain" if n % 2 == 0 else "append"
        wait_for_workers(server, log_offset, 2)  # /health answered: one worker at least
        if mode == "append":  # let a retraining due since the restart finish first
            wait_until_no_retraining(server, log_offset)
        stop, ready = threading.Event(), threading.Barrier(CLIENTS + 1)
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [
                pool.submit(post_until_killed, server.url, samples, f"r{n}c{c}", ready, stop)
                for c in range(CLIENTS)
            ]
            ready.wait(timeout=60)  # every client is about to send
            if mode == "retrain":  # kill while a retraining (a child process) runs
                deadline = time.monotonic() + 60
                while RETRAIN_LOG not in server.log()[log_offset:]:
                    assert time.monotonic() < deadline, server.log()
                    time.sleep(0.02)
                delay = rng.uniform(0.0, 2.0)
            else:  # kill among the appends
                delay = rng.uniform(0.3, 1.5)
            time.sleep(delay)
            retraining_at_kill = retraining(server, log_offset)
            server.kill(signal.SIGKILL)
            stop.set()
            results = [f.result() for f in futures]
        sent = [pid for s, _ in results for pid in s]
        accepted = [pid for _, a in results for pid in a]
        all_sent.update(sent)
        all_accepted.extend(accepted)

        # Right after the kill, before anything repairs: the active set is complete.
        version_at_kill = store.load().version
        raw = project.prod_data_path.read_bytes() if project.prod_data_path.exists() else b""
        torn_at_kill = bool(raw) and not raw.endswith(b"\n")  # cut at the restart if so
        log_offset = len(server.log())
        server.start()
        # After the restart: a verified set, no half-written version, whole rows only.
        assert store.load().version >= version_at_kill
        assert not list(store.versions_dir.glob(".tmp-*"))
        assert malformed_rows(project.prod_data_path, labels) == [], server.log()
        ids = prediction_ids(project.prod_data_path)
        counts = Counter(ids)
        assert [pid for pid, n in counts.items() if n > 1] == []
        assert [pid for pid in all_accepted if pid not in counts] == [], "accepted rows lost"
        assert set(ids) <= all_sent
        assert httpx.get(f"{server.url}/model", timeout=30).json()["prod_rows"] == len(ids)
        rounds.append(
            {
                "round": n,
                "aimed_at": mode,
                "retraining_at_kill": retraining_at_kill,
                "kill_delay_s": round(delay, 2),
                "sent": len(sent),
                "accepted": len(accepted),
                "in_flight": len(sent) - len(accepted),
                "in_flight_stored": len(set(ids) & (set(sent) - set(accepted))),
                "rows_after_restart": len(ids),
                "version_at_kill": version_at_kill,
                "torn_line_at_kill": torn_at_kill,
            }
        )

    # The retraining a kill interrupted is caught up at start: the model covers every
    # k-th row that was stored.
    rows = len(prediction_ids(project.prod_data_path))
    deadline = time.monotonic() + 120
    while store.manifest().rows.get("prod_seen", 0) < rows // K * K:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.2)
    for version in store.versions():  # every version folder ever activated is whole
        store.load(version)
    record_figures(
        "faults",
        {
            "seed": SEED,
            "kills": ROUNDS,
            "kills_during_a_retraining": sum(r["retraining_at_kill"] for r in rounds),
            "accepted_rows": len(all_accepted),
            "rows_found": rows,
            "accepted_rows_lost": 0,
            "torn_lines_at_kill": sum(r["torn_line_at_kill"] for r in rounds),
            "partial_lines_after_restart": 0,
            "final_version": store.current_version(),
            "rounds": rounds,
        },
    )
    assert sum(r["retraining_at_kill"] for r in rounds) >= 1  # the retraining case was hit


# -- the start-up clean-up against a save in progress --------------------------------------
def test_start_up_clean_up_never_breaks_a_save_in_progress(project: PipelineSettings) -> None:
    """A worker starting (bootstrap cleans staging folders a crash left) while another
    process writes a new version must leave that version whole."""
    context = multiprocessing.get_context("spawn")
    failures, stop = context.Value("i", 0), context.Event()
    root = str(project.artifacts_dir)
    cleaner = context.Process(target=clean_repeatedly, args=(root, stop))
    saver = context.Process(target=save_repeatedly, args=(root, SAVES, failures))
    cleaner.start()
    try:
        saver.start()
        saver.join(timeout=300)
    finally:
        stop.set()
        cleaner.join(timeout=30)
        for process in (saver, cleaner):
            if process.is_alive():
                process.kill()
    assert saver.exitcode == 0
    store = ArtifactStore(project.artifacts_dir)
    broken = []
    for version in store.versions():
        try:
            store.load(version)
        except ArtifactError as exc:
            broken.append(str(exc))
    assert failures.value == 0
    assert broken == []
    assert len(store.versions()) == SAVES + 1
