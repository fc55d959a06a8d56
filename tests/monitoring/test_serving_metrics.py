"""mlstack.serving.metrics in a real FastAPI app under real uvicorn with two workers: every
scrape, whichever worker answers it, gives the figures of both workers together."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.monitoring.conftest import ACCURACY_WINDOW, Server, demo_env
from tests.monitoring.servers import REPO_ROOT, scrape
from tests.support.servers import uvicorn_server, wait_until


def post_all(base: str, calls: list[tuple[str, dict | None]], threads: int = 8) -> list[dict]:
    """POST each (path, json) on its own connection, several at a time, so that the
    kernel hands them to both workers."""

    def post(call: tuple[str, dict | None]) -> dict:
        path, body = call
        answer = httpx.post(base + path, json=body, headers={"Connection": "close"}, timeout=10)
        return answer.raise_for_status().json()

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(post, calls))


def delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_counts_from_both_workers_add_up(demo_server: Server) -> None:
    metrics_url = demo_server.base + "/metrics"
    before = scrape(metrics_url)
    labels = [i % 3 for i in range(60)]
    answers = post_all(demo_server.base, [("/predict", {"label": x}) for x in labels])
    workers = {a["pid"] for a in answers}
    assert len(workers) == 2, f"all 60 requests went to one worker: {workers}"

    expected = Counter(str(x) for x in labels)
    # Several scrapes, answered by either worker: always the same totals.
    for _ in range(6):
        after = scrape(metrics_url)
        for label, count in expected.items():
            assert delta(after, before, f'mlstack_predictions_total{{label="{label}"}}') == count
        labels_ = '{method="POST",route="/predict",status="200"}'
        assert delta(after, before, f"mlstack_http_requests_total{labels_}") == len(labels)
        latency = f"mlstack_http_request_duration_seconds_count{labels_}"
        assert delta(after, before, latency) == len(labels)


def test_routes_are_templates_and_statuses_are_kept(demo_server: Server) -> None:
    base = demo_server.base
    before = scrape(base + "/metrics")
    for item in (1, 2, 3):
        assert httpx.get(f"{base}/items/{item}").status_code == 200
    assert httpx.get(f"{base}/items/-5").status_code == 404
    assert httpx.get(f"{base}/no/such/page").status_code == 404
    assert httpx.get(f"{base}/boom").status_code == 500
    assert httpx.post(f"{base}/predict", json={"nothing": 1}).status_code == 422
    after = scrape(base + "/metrics")

    def requests(method: str, route: str, status: int) -> float:
        key = f'mlstack_http_requests_total{{method="{method}",route="{route}",status="{status}"}}'
        return delta(after, before, key)

    assert requests("GET", "/items/{item_id}", 200) == 3
    assert requests("GET", "/items/{item_id}", 404) == 1
    assert requests("GET", "unmatched", 404) == 1
    assert requests("GET", "/boom", 500) == 1
    assert requests("POST", "/predict", 422) == 1
    # One series per template, never one per raw path.
    assert not [k for k in after if "/items/1" in k or "/no/such" in k]
    assert not [k for k in after if "mlstack_predictions_total" in k and "nothing" in k]


def test_latency_histogram_is_consistent(demo_server: Server) -> None:
    post_all(demo_server.base, [("/predict", {"label": 1})] * 10)
    samples = scrape(demo_server.base + "/metrics")
    prefix = 'mlstack_http_request_duration_seconds_bucket{le="'
    suffix = '",method="POST",route="/predict",status="200"}'
    buckets = sorted(
        (float(k[len(prefix) : k.index('"', len(prefix))]), v)
        for k, v in samples.items()
        if k.startswith(prefix) and k.endswith(suffix)
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "cumulative buckets must not decrease"
    assert buckets[-1][0] == float("inf")
    labels = '{method="POST",route="/predict",status="200"}'
    total = samples[f"mlstack_http_request_duration_seconds_count{labels}"]
    assert buckets[-1][1] == total >= 10
    assert samples[f"mlstack_http_request_duration_seconds_sum{labels}"] > 0


def test_in_progress_requests_return_to_zero(demo_server: Server) -> None:
    post_all(demo_server.base, [("/predict", {"label": 2})] * 20)
    samples = scrape(demo_server.base + "/metrics")
    # The scrape itself is the one GET in progress.
    assert samples['mlstack_http_requests_in_progress{method="POST"}'] == 0
    assert samples['mlstack_http_requests_in_progress{method="GET"}'] == 1


def test_rolling_feedback_accuracy_covers_all_workers(demo_server: Server) -> None:
    base = demo_server.base
    key = f'mlstack_feedback_accuracy{{window="{ACCURACY_WINDOW}"}}'
    before = scrape(base + "/metrics")
    wrong = [("/feedback", {"prediction": 1, "target": 2})] * ACCURACY_WINDOW
    answers = post_all(base, wrong)
    assert len({a["pid"] for a in answers}) >= 1
    samples = scrape(base + "/metrics")
    assert samples[key] == 0.0
    assert samples[f'mlstack_feedback_window_rows{{window="{ACCURACY_WINDOW}"}}'] == ACCURACY_WINDOW

    # 3 right answers among the last 10: 0.3, wherever they were stored.
    right = [("/feedback", {"prediction": 4, "target": 4})] * 3
    post_all(base, right)
    samples = scrape(base + "/metrics")
    assert samples[key] == pytest.approx(0.3)
    assert delta(samples, before, 'mlstack_feedback_total{correct="false"}') == ACCURACY_WINDOW
    assert delta(samples, before, 'mlstack_feedback_total{correct="true"}') == 3

    post_all(base, [("/feedback", {"prediction": 4, "target": 4})] * ACCURACY_WINDOW)
    assert scrape(base + "/metrics")[key] == 1.0


def test_model_version_and_retrains(demo_server: Server) -> None:
    base = demo_server.base
    before = scrape(base + "/metrics")
    assert before["mlstack_model_version{}"] >= 1  # set by each worker at start
    version = int(before["mlstack_model_version{}"]) + 7
    httpx.post(f"{base}/retrain/{version}").raise_for_status()
    after = scrape(base + "/metrics")
    assert after["mlstack_model_version{}"] == version
    assert delta(after, before, 'mlstack_retrains_total{outcome="success"}') == 1
    assert delta(after, before, "mlstack_retrain_duration_seconds_count{}") == 1
    assert delta(after, before, "mlstack_retrain_duration_seconds_sum{}") == pytest.approx(0.3)
    assert after["mlstack_last_retrain_timestamp_seconds{}"] > 1.7e9


def test_a_restart_starts_from_zero(tmp_path: Path) -> None:
    """One process on its own (no --workers): the automatic folder is per server run,
    and the folders of runs that are over are removed."""
    env = demo_env(tmp_path)
    runs = []
    for run in range(2):
        with uvicorn_server(
            "tests.monitoring.demo_app:app", cwd=REPO_ROOT, env=env, log=tmp_path / f"{run}.log"
        ) as (base, _):
            post_all(base, [("/predict", {"label": 5})] * 4, threads=2)
            assert scrape(base + "/metrics")['mlstack_predictions_total{label="5"}'] == 4
            runs.append(sorted(p.name for p in (tmp_path / "mlstack-metrics").iterdir()))
    assert len(runs[0]) == 1
    assert len(runs[1]) == 1
    assert runs[0] != runs[1], "the second run used the first run's folder"


def test_an_explicit_multiprocess_folder_is_used(tmp_path: Path) -> None:
    folder = tmp_path / "prometheus-multiproc"
    env = demo_env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(folder))
    with uvicorn_server(
        "tests.monitoring.demo_app:app",
        cwd=REPO_ROOT,
        env=env,
        log=tmp_path / "uvicorn.log",
        workers=2,
    ) as (base, _):
        post_all(base, [("/predict", {"label": 8})] * 6)
        assert scrape(base + "/metrics")['mlstack_predictions_total{label="8"}'] == 6
        files = {p.name.split("_")[0] for p in folder.iterdir()}
        assert {"counter", "histogram", "gauge"} <= files
        assert not (tmp_path / "mlstack-metrics").exists()


def test_an_inherited_automatic_folder_is_not_shared(tmp_path: Path) -> None:
    """A server started by a process that imported metrics (and so chose a folder for
    itself) does not add its figures to that process's."""
    # Named as the metrics folder is named: the owner's pid and start time (this live process).
    started = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]
    inherited = tmp_path / "mlstack-metrics" / f"{os.getpid()}-{started}"
    inherited.mkdir(parents=True)
    env = demo_env(
        tmp_path,
        PROMETHEUS_MULTIPROC_DIR=str(inherited),
        MLSTACK_METRICS_AUTO_DIR=str(inherited),
    )
    with uvicorn_server(
        "tests.monitoring.demo_app:app", cwd=REPO_ROOT, env=env, log=tmp_path / "uvicorn.log"
    ) as (base, _):
        post_all(base, [("/predict", {"label": 3})] * 2, threads=1)
        assert scrape(base + "/metrics")['mlstack_predictions_total{label="3"}'] == 2
        assert not list(inherited.iterdir()), "the server wrote into its parent's folder"
        # Its own folder beside the parent's, which stays: its owner is alive.
        assert len(list((tmp_path / "mlstack-metrics").iterdir())) == 2


def test_prometheus_client_imported_first_still_counts(tmp_path: Path) -> None:
    """Another module imported prometheus_client before the metrics: still file-backed."""
    code = (
        "import prometheus_client\n"
        "from mlstack.serving import metrics\n"
        "metrics.observe_prediction(6); metrics.observe_prediction(6)\n"
        "print(metrics.render(metrics.build_registry(10))[0].decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=demo_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert 'mlstack_predictions_total{label="6"} 2.0' in out


def test_workers_leave_no_live_gauge_behind(tmp_path: Path) -> None:
    """A worker that stops takes its in-progress and model-version gauges with it."""
    folder = tmp_path / "multiproc"
    env = demo_env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(folder))
    with uvicorn_server(
        "tests.monitoring.demo_app:app",
        cwd=REPO_ROOT,
        env=env,
        log=tmp_path / "uvicorn.log",
        workers=2,
    ):
        wait_until(
            lambda: len(list(folder.glob("gauge_livemostrecent_*.db"))) == 2,
            30,
            "both workers to write their model version",
        )
    assert not list(folder.glob("gauge_live*_*.db"))
    assert list(folder.glob("counter_*.db")), "counters outlive the workers (they are totals)"


def test_importing_the_app_does_nothing_to_the_process(tmp_path: Path) -> None:
    """No folder chosen, no environment changed, prometheus_client not even imported,
    until the metrics are first used."""
    code = (
        "import os, sys\n"
        "import mlstack.serving.app, mlstack.serving.metrics\n"
        "assert 'PROMETHEUS_MULTIPROC_DIR' not in os.environ\n"
        "assert 'prometheus_client' not in sys.modules\n"
        "mlstack.serving.metrics.observe_prediction(1)\n"
        "print(os.environ['PROMETHEUS_MULTIPROC_DIR'])"
    )
    env = demo_env(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).parent == tmp_path / "mlstack-metrics"
