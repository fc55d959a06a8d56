"""The Kubernetes manifests of k8s/: kubernetes-validate --strict, kustomize, and what
the stack needs of them (probes, services, volumes, the scale-out on PostgreSQL, pods
sized from the measured memory)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
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
    # The memory limit holds one worker's measured peak (benchmarks/memory.py: 0.9 GiB
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
