"""A real Prometheus (Debian's package) with the shipped scrape configuration and alert
rules scrapes a real uvicorn app with two workers and the real reporting exporter;
the figures are read back through Prometheus' HTTP query API, and every metric the
Grafana dashboard plots is found there."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
from mlstack.fake_feedback import append_feedback
from mlstack.settings import PipelineSettings

from tests.monitoring.conftest import ACCURACY_WINDOW, Server
from tests.monitoring.servers import (
    MONITORING,
    REPO_ROOT,
    Process,
    clean_env,
    free_port,
    prom_query,
    prom_value,
    prometheus_binary,
    prometheus_config,
    prometheus_server,
    scrape,
    wait_until,
)
from tests.monitoring.test_exporter import features
from tests.monitoring.test_serving_metrics import post_all

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        prometheus_binary() is None,
        reason="Prometheus is not installed: apt-get install -y prometheus (Debian's package)",
    ),
]

DASHBOARD = MONITORING / "grafana/dashboards/mlstack.json"


@dataclass
class Stack:
    prometheus: str
    serving: Server
    exporter: str
    predicted: dict[str, int]


@pytest.fixture(scope="module")
def stack(
    demo_server: Server, trained_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("prometheus")
    root = work / "project"
    shutil.copytree(trained_root, root, symlinks=True)
    project = PipelineSettings(project_root=root)
    ref = pd.read_csv(project.ref_data_path)
    rows = ref.sample(60, random_state=4)
    targets = rows["target"].tolist()
    predictions = targets[:45] + [(t + 1) % 10 for t in targets[45:]]  # 45 of 60 right
    append_feedback(project, rows[features(ref)].to_numpy(), targets, predictions)

    port = free_port()
    exporter = Process(
        [sys.executable, "metrics_exporter.py"],
        cwd=REPO_ROOT / "reporting",
        env=clean_env(
            DATA_DIR=str(project.data_dir),
            EXPORTER_HOST="127.0.0.1",
            EXPORTER_PORT=str(port),
            REPORT_REFRESH_SECONDS="1",
        ),
        log=work / "exporter.log",
    )
    exporter_url = f"http://127.0.0.1:{port}"
    try:
        host = demo_server.base.removeprefix("http://")
        config = prometheus_config({"serving-api": host, "reporting": f"127.0.0.1:{port}"})
        with prometheus_server(config, work / "prometheus") as prometheus:
            # Traffic: predictions by label, feedback (7 right, 3 wrong), a retraining.
            labels = [i % 4 for i in range(24)]
            post_all(demo_server.base, [("/predict", {"label": x}) for x in labels])
            feedback = [{"prediction": 3, "target": 3}] * 6 + [{"prediction": 3, "target": 5}] * 3
            post_all(demo_server.base, [("/feedback", body) for body in feedback])
            post_all(demo_server.base, [("/feedback", {"prediction": 3, "target": 3, "rows": 60})])
            httpx.post(f"{demo_server.base}/retrain/4").raise_for_status()
            wait_until(
                lambda: "mlstack_report_f1{}" in scrape(exporter_url + "/metrics"),
                60,
                "the exporter's first figures",
            )
            predicted = {str(x): labels.count(x) for x in set(labels)}
            yield Stack(prometheus, demo_server, exporter_url, predicted)
    finally:
        exporter.stop()


def scraped_after(stack: Stack, expr: str, check, what: str) -> float:
    """Wait for Prometheus' next scrapes until `expr` satisfies `check`."""
    return wait_until(
        lambda: (v := prom_value(stack.prometheus, expr)) is not None and check(v) and (v or True),
        30,
        what,
    )


def test_both_targets_are_up(stack: Stack) -> None:
    for job in ("serving-api", "reporting", "prometheus"):
        scraped_after(stack, f'up{{job="{job}"}}', lambda v: v == 1, f"job {job} to be up")


def test_predictions_and_requests_of_both_workers(stack: Stack) -> None:
    # Counters of the whole server: they include the other tests' traffic, so each
    # label has at least what this module sent, and /metrics itself is counted.
    for label, count in stack.predicted.items():
        scraped_after(
            stack,
            f'sum(mlstack_predictions_total{{label="{label}"}})',
            lambda v, c=count: v >= c,
            f"predictions of label {label}",
        )
    direct = scrape(stack.serving.base + "/metrics")
    # Prometheus comes to hold exactly what the app reports (the counters no longer move).
    for label in stack.predicted:
        key = f'mlstack_predictions_total{{label="{label}"}}'
        scraped_after(stack, f"sum({key})", lambda v, k=key: v == direct[k], key)

    def routes() -> set[str]:
        query = "sum by (route) (mlstack_http_requests_total)"
        return {r["metric"]["route"] for r in prom_query(stack.prometheus, query)}

    # A scrape of /metrics is counted after it answers: it shows from the next scrape on.
    wait_until(
        lambda: {"/predict", "/feedback", "/metrics"} <= routes(), 30, "the routes to be counted"
    )
    buckets = 'mlstack_http_request_duration_seconds_bucket{route="/predict"}'
    p95 = prom_value(stack.prometheus, f"histogram_quantile(0.95, sum by (le) ({buckets}))")
    assert p95 is not None
    assert 0 < p95 < 30


def test_feedback_accuracy_model_version_and_retrains(stack: Stack) -> None:
    window = f'{{window="{ACCURACY_WINDOW}"}}'
    # The last 10 feedback rows of the server are this module's: 6 + 1 right, 3 wrong.
    scraped_after(
        stack, f"mlstack_feedback_accuracy{window}", lambda v: v == pytest.approx(0.7), "0.7"
    )
    scraped_after(stack, "mlstack_prod_data_rows", lambda v: v == 60, "60 production rows")
    scraped_after(stack, "mlstack_model_version", lambda v: v == 4, "model version 4")
    scraped_after(
        stack, 'sum(mlstack_retrains_total{outcome="success"})', lambda v: v >= 1, "a retraining"
    )


def test_report_figures(stack: Stack) -> None:
    accuracy = scraped_after(
        stack, "mlstack_report_accuracy", lambda v: v > 0, "the report's accuracy"
    )
    assert accuracy == pytest.approx(45 / 60)
    direct = scrape(stack.exporter + "/metrics")
    for name in ("f1", "balanced_accuracy", "precision", "recall", "drift_share"):
        value = prom_value(stack.prometheus, f"mlstack_report_{name}")
        assert value == pytest.approx(direct[f"mlstack_report_{name}{{}}"]), name
        assert 0 <= value <= 1


def test_alert_rules_are_loaded(stack: Stack) -> None:
    groups = httpx.get(f"{stack.prometheus}/api/v1/rules").raise_for_status().json()
    rules = {r["name"]: r for g in groups["data"]["groups"] for r in g["rules"]}
    assert {"ServingApiDown", "DataDrift", "FeedbackAccuracyLow"} <= set(rules)
    assert all(r["health"] != "err" for r in rules.values()), rules


METRIC = re.compile(r"\b(mlstack_[a-z0-9_]+|up)\b")


def dashboard_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            names |= set(METRIC.findall(target["expr"]))
    return names


def test_every_dashboard_metric_exists_in_prometheus(stack: Stack) -> None:
    wanted = dashboard_metrics()
    assert len(wanted) >= 10

    def present() -> set[str]:
        answer = httpx.get(f"{stack.prometheus}/api/v1/label/__name__/values")
        return set(answer.raise_for_status().json()["data"])

    # mlstack_report_drift_share and the rest arrive with the exporter's scrapes.
    deadline = time.monotonic() + 30
    while not wanted <= (found := present()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert wanted <= found, f"not in Prometheus: {wanted - found}"
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "1m")
            answer = httpx.get(f"{stack.prometheus}/api/v1/query", params={"query": expr})
            assert answer.status_code == 200, (panel["title"], target["expr"], answer.text)
