"""Settings reach the containers: one optional .env at the repository root feeds every
service, from the root compose.yml and from each folder's file; SERVING_WORKERS becomes
the worker count of the image's `uvicorn api:app`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.docker.test_compose_files import _compose

ROOT = Path(__file__).resolve().parents[2]
SERVICE_FILES = {
    "serving-api": "serving/docker-compose.yml",
    "webapp": "webapp/docker-compose.yml",
    "reporting": "reporting/docker-compose.yml",
}
ENTRYPOINT = ROOT / "tools" / "docker-entrypoint.sh"
STAND_INS = Path(__file__).resolve().parent / "stand_ins"  # uvicorn, evidently, ...: `env`


def _services(checkout: Path, compose_file: str, cwd: Path) -> dict[str, dict]:
    done = subprocess.run(
        [*_compose(), "-f", str(checkout / compose_file), "config", "--format", "json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(checkout)},  # nothing from this shell
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["services"]


def _environments(checkout: Path, compose_file: str, cwd: Path) -> dict[str, dict]:
    return {
        name: service.get("environment") or {}
        for name, service in _services(checkout, compose_file, cwd).items()
    }


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The compose files alone, laid out as in the repository, with a root .env."""
    for name in ["compose.yml", *SERVICE_FILES.values()]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "datasets").mkdir()
    (tmp_path / ".env").write_text("RETRAIN_EVERY_K=50\nGATE_TOLERANCE=0.05\nAPI_TOKEN=s3cret\n")
    return tmp_path


def test_the_root_env_file_reaches_every_service_of_make_up(checkout: Path) -> None:
    environments = _environments(checkout, "compose.yml", checkout)
    assert set(environments) == set(SERVICE_FILES)
    for name, environment in environments.items():
        assert environment.get("RETRAIN_EVERY_K") == "50", name
        assert environment.get("GATE_TOLERANCE") == "0.05", name
        assert environment.get("API_TOKEN") == "s3cret", name
    # What a service must have whatever the file says stays its own.
    assert environments["webapp"]["SERVING_URL"] == "http://serving-api:8080"


@pytest.mark.parametrize("service", SERVICE_FILES)
@pytest.mark.parametrize("where", ["from-the-root", "from-the-folder"])
def test_the_root_env_file_reaches_the_briefs_per_folder_commands(
    checkout: Path, service: str, where: str
) -> None:
    compose_file = SERVICE_FILES[service]
    cwd = checkout if where == "from-the-root" else (checkout / compose_file).parent
    environment = _environments(checkout, compose_file, cwd)[service]
    assert environment.get("RETRAIN_EVERY_K") == "50"
    assert environment.get("GATE_TOLERANCE") == "0.05"


@pytest.mark.parametrize(
    ("compose_file", "where"),
    [
        ("compose.yml", "."),
        ("serving/docker-compose.yml", "."),
        ("serving/docker-compose.yml", "serving"),
    ],
)
def test_your_own_data_set_reaches_the_serving_container_read_only(
    checkout: Path, compose_file: str, where: str
) -> None:
    """.env names a folder (or a table) under datasets/ as the container sees it; the
    serving container gets the setting and the folder, which it may not write."""
    (checkout / ".env").write_text(
        "DATASET_DIR=/datasets/shapes\nIMAGE_FEATURES=photo\n"
        "DATASET_CSV=/datasets/wine.csv\nTARGET_COLUMN=label\n"
    )
    serving = _services(checkout, compose_file, checkout / where)["serving-api"]
    environment = serving["environment"]
    assert environment["DATASET_DIR"] == "/datasets/shapes"
    assert environment["IMAGE_FEATURES"] == "photo"
    assert environment["DATASET_CSV"] == "/datasets/wine.csv"
    assert environment["TARGET_COLUMN"] == "label"
    mounts = {v["target"]: v for v in serving["volumes"]}
    assert Path(mounts["/datasets"]["source"]) == checkout / "datasets"
    assert mounts["/datasets"]["read_only"] is True
    assert mounts["/data"].get("read_only", False) is False  # the archive goes there


def test_make_switch_runs_the_bootstrap_in_the_serving_image_with_the_reports() -> None:
    """`make switch` (what the README gives for Docker): the serving image's own
    bootstrap (python -m mlstack.bootstrap, tests/scripts/test_switch.py), with the
    reporting workspace mounted so that it is archived too, services stopped first."""
    # Under `make test` the parent make's MAKEFLAGS would add "Entering directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "switch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    stop, run, up = done.stdout.splitlines()
    assert stop.endswith("stop serving-api reporting")
    assert f'-v "{ROOT}/reporting/workspace:/workspace" -e WORKSPACE_DIR=/workspace' in run
    assert run.endswith("serving-api python -m mlstack.bootstrap")
    assert up.endswith("up -d --build --wait")


def test_without_an_env_file_the_services_keep_the_code_defaults(checkout: Path) -> None:
    (checkout / ".env").unlink()
    for name, environment in _environments(checkout, "compose.yml", checkout).items():
        # Defaults live in mlstack.settings (and the images' ENV), not in the compose files.
        assert "RETRAIN_EVERY_K" not in environment, name


def _entrypoint_env(extra: dict[str, str], program: str = "uvicorn") -> dict[str, str]:
    """The environment `program` gets from the entrypoint (a stand-in named like it that
    prints its environment). As a non-root user the entrypoint changes no owner and runs
    the command as is."""
    command = ["/bin/sh", str(ENTRYPOINT), program]
    if os.getuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"PATH": f"{STAND_INS}:/usr/bin:/bin", **extra},
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def test_serving_workers_sets_the_worker_count_of_uvicorn() -> None:
    assert _entrypoint_env({"SERVING_WORKERS": "3"})["WEB_CONCURRENCY"] == "3"
    # uvicorn's own variable, when given, is left alone; nothing set, nothing added.
    both = {"SERVING_WORKERS": "3", "WEB_CONCURRENCY": "2"}
    assert _entrypoint_env(both)["WEB_CONCURRENCY"] == "2"
    assert "WEB_CONCURRENCY" not in _entrypoint_env({})


def test_serving_workers_does_not_reach_the_other_commands() -> None:
    """Every service reads the same .env: the reporting image's `evidently ui` (uvicorn
    with an app object) must not be asked for workers, or it exits at once."""
    for program in ("evidently", "python"):
        assert "WEB_CONCURRENCY" not in _entrypoint_env({"SERVING_WORKERS": "2"}, program)
