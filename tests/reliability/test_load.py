"""Load: many clients predict and send feedback at once against two uvicorn workers
while the model retrains every k rows. Afterwards prod_data.csv holds exactly one
well-formed row per accepted feedback, the model advanced one version per k rows,
and no request got a 5xx."""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from mlstack.artifacts import ArtifactStore
from mlstack.settings import PipelineSettings

from tests.reliability.conftest import malformed_rows, prediction_ids, record_figures
from tests.support.serving import b64, sample_images

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

K = 25
FEEDBACK_CLIENTS = 8
FEEDBACKS_PER_CLIENT = 25  # 200 rows: 8 retrainings
PREDICT_CLIENTS = 4
MAX_SECONDS = 120  # every loop also stops here, whatever happens


@dataclass
class Tally:
    """What the clients saw, shared by their threads."""

    statuses: Counter = field(default_factory=Counter)  # (route, status) -> count
    latencies: dict[str, list[float]] = field(default_factory=dict)
    accepted_ids: list[str] = field(default_factory=list)
    version_regressions: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.statuses[(route, status)] += 1
            self.latencies.setdefault(route, []).append(seconds)


def timed(client: httpx.Client, tally: Tally, route: str, method: str, path: str, **kw):
    started = time.perf_counter()
    answer = client.request(method, path, **kw)
    tally.record(route, answer.status_code, time.perf_counter() - started)
    return answer


def test_concurrent_predict_and_feedback_with_retrains(project: PipelineSettings, serve) -> None:
    server = serve(project, workers=2, k=K, RETRAIN_WAIT_SECONDS="5")
    samples = sample_images(project)
    tally = Tally()
    done = threading.Event()
    deadline = time.monotonic() + MAX_SECONDS

    def feedback_client(seed: int) -> None:
        rng = random.Random(seed)
        seen_version = 0
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for _ in range(FEEDBACKS_PER_CLIENT):
                if time.monotonic() > deadline:
                    return
                label, data = rng.choice(samples)
                image = b64(data)
                answer = timed(client, tally, "predict", "POST", "/predict", json={"image": image})
                if answer.status_code != 200:
                    continue
                body = answer.json()
                if body["model_version"] < seen_version:  # versions only move forward
                    tally.version_regressions.append(f"{seen_version} -> {body['model_version']}")
                seen_version = body["model_version"]
                # Users correct some predictions; the true label is the sample's own.
                payload = {
                    "image": image,
                    "prediction": body["prediction"],
                    "target": label,
                    "prediction_id": body["prediction_id"],
                }
                answer = timed(client, tally, "feedback", "POST", "/feedback", json=payload)
                if answer.status_code == 200:
                    with tally.lock:
                        tally.accepted_ids.append(body["prediction_id"])

    def predict_client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while not done.is_set() and time.monotonic() < deadline:
                _, data = rng.choice(samples)
                timed(client, tally, "predict", "POST", "/predict", json={"image": b64(data)})

    def reader_and_bad_input(seed: int) -> None:
        rng = random.Random(seed)
        label, data = samples[0]
        bad_bodies = [
            {"image": b64(data), "prediction": label, "target": 99},
            {"image": "not base64!", "prediction": label, "target": label},
            {"image": b64(b"not an image"), "prediction": label, "target": label},
        ]
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while not done.is_set() and time.monotonic() < deadline:
                timed(client, tally, "model", "GET", "/model")
                timed(client, tally, "health", "GET", "/health")
                timed(
                    client, tally, "feedback(bad)", "POST", "/feedback", json=rng.choice(bad_bodies)
                )

    started = time.perf_counter()
    with ThreadPoolExecutor(FEEDBACK_CLIENTS + PREDICT_CLIENTS + 1) as pool:
        others = [pool.submit(predict_client, 100 + i) for i in range(PREDICT_CLIENTS)]
        others.append(pool.submit(reader_and_bad_input, 200))
        feeders = [pool.submit(feedback_client, i) for i in range(FEEDBACK_CLIENTS)]
        for future in feeders:
            future.result()
        load_seconds = time.perf_counter() - started
        done.set()
        for future in others:
            future.result()

    accepted = len(tally.accepted_ids)
    most_versions = 1 + accepted // K
    store = ArtifactStore(project.artifacts_dir)

    def newest_saw() -> int:
        return store.history()[-1]["rows"].get("prod_seen", 0)

    # The last retrainings may still run (each k-th answer waits at most 5 s for its own).
    wait_deadline = time.monotonic() + 180
    while newest_saw() != accepted and time.monotonic() < wait_deadline:
        time.sleep(0.2)
    drain_seconds = time.perf_counter() - started - load_seconds
    ids = prediction_ids(project.prod_data_path)
    history = store.history()
    server_errors = sum(n for (_, status), n in tally.statuses.items() if status >= 500)
    labels = {str(c) for c in store.manifest().classes}

    def percentile(route: str, q: float) -> float:
        values = sorted(tally.latencies.get(route, [0.0]))
        return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 1)

    record_figures(
        "load",
        {
            "workers": 2,
            "k": K,
            "requests": sum(tally.statuses.values()),
            "by_route_and_status": {f"{r} {s}": n for (r, s), n in sorted(tally.statuses.items())},
            "load_seconds": round(load_seconds, 1),
            "requests_per_second": round(sum(tally.statuses.values()) / load_seconds, 1),
            "predict_ms_p50_p95": [percentile("predict", 0.5), percentile("predict", 0.95)],
            "feedback_ms_p50_p95": [percentile("feedback", 0.5), percentile("feedback", 0.95)],
            "feedback_ms_mean": round(1000 * statistics.fmean(tally.latencies["feedback"]), 1),
            "accepted_feedback": accepted,
            "rows_found": len(ids),
            "versions_at_most": most_versions,
            "versions_found": store.current_version(),
            "seconds_until_last_version": round(drain_seconds, 1),
            "retrain_seconds": [h["metrics"].get("seconds") for h in history[1:]],
            "server_errors": server_errors,
        },
    )

    assert server_errors == 0, tally.statuses
    assert accepted == FEEDBACK_CLIENTS * FEEDBACKS_PER_CLIENT, tally.statuses
    assert tally.statuses[("feedback(bad)", 200)] == 0
    # One well-formed row per accepted feedback: none lost, none doubled, none extra.
    assert malformed_rows(project.prod_data_path, labels) == []
    assert sorted(ids) == sorted(tally.accepted_ids)
    assert httpx.get(f"{server.url}/model", timeout=30).json()["prod_rows"] == accepted
    # Retrainings one at a time, each on at least the rows that triggered it; those that
    # fell due while one ran coalesced into one more run, so the newest saw every row.
    assert [h["version"] for h in history] == list(range(1, len(history) + 1)), server.log()
    assert 2 <= len(history) <= most_versions
    assert history[-1]["rows"]["prod_seen"] == accepted
    seen = [h["rows"]["prod_seen"] for h in history[1:]]
    assert seen == sorted(seen)
    for h in history[1:]:
        assert h["rows"]["prod_seen"] >= int(h["reason"].split()[0])
    assert tally.version_regressions == []
