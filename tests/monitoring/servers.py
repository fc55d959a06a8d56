"""Real processes for the monitoring tests: Prometheus, and its figures read back. The
launcher of child processes (uvicorn, the exporter) is tests.support.servers's."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

# uvicorn_server and wait_until: still importable from here by the tests that did.
from tests.support.servers import Process, free_port, uvicorn_server, wait_until  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING = REPO_ROOT / "monitoring"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PROMETHEUS_MULTIPROC")}
    env.update(extra)
    return env


def scrape(url: str) -> dict[str, float]:
    """One /metrics page as {'name{a="x",b="y"}': value}, labels sorted."""
    text = httpx.get(url, timeout=10).raise_for_status().text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def prometheus_config(targets: dict[str, str], interval: str = "1s") -> dict:
    """The shipped monitoring/prometheus/prometheus.yml with its targets replaced
    (job name -> host:port) and a short scrape interval."""
    config = yaml.safe_load((MONITORING / "prometheus/prometheus.yml").read_text())
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    missing = set(targets) - set(jobs)
    assert not missing, f"prometheus.yml has no job {missing}"
    for name, job in jobs.items():
        job["scrape_interval"] = interval
        job["scrape_timeout"] = interval
        if name in targets:
            job["static_configs"] = [{"targets": [targets[name]]}]
    return config


@contextlib.contextmanager
def prometheus_server(config: dict, workdir: Path) -> Iterator[str]:
    binary = prometheus_binary()
    assert binary, "prometheus is not installed"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # The rule files sit beside the configuration, as in the Compose stack.
    for rule_file in config.get("rule_files", []):
        shutil.copy(MONITORING / "prometheus" / rule_file, workdir / rule_file)
    config = {**config}
    jobs = config["scrape_configs"]
    for job in jobs:
        if job["job_name"] == "prometheus":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = Process(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=workdir,
        env=clean_env(),
        log=workdir / "prometheus.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            process.check_alive()
            return httpx.get(base + "/-/ready", timeout=2).status_code == 200

        wait_until(ready, 60, "Prometheus to be ready")
        yield base
    finally:
        process.stop()


def prom_query(base: str, expr: str) -> list[dict]:
    """Prometheus' instant query API: the result vector."""
    answer = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10)
    body = answer.raise_for_status().json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def prom_value(base: str, expr: str) -> float | None:
    """The value of a query that gives one series, or None when it gives none."""
    result = prom_query(base, expr)
    if not result:
        return None
    assert len(result) == 1, f"{expr} gave {len(result)} series: {result}"
    return float(result[0]["value"][1])
