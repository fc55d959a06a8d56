"""The repository's .dockerignore lets in only what the images install: never data, models,
tests, benchmarks, caches or tooling.

The three images are built with the repository root as their context; what reaches the
engine is checked through a real build of a copy of the repository with one file planted
in each place that must stay out.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.docker.conftest import REPO_ROOT

pytestmark = [pytest.mark.docker]

MUST_STAY_OUT = (
    "data/ref_data.csv",
    "data/prod_data.csv",
    "artifacts/versions/000001/model.pkl",
    ".git/HEAD",
    ".venv/bin/python",
    "scripts/mlstack/__pycache__/x.cpython-311.pyc",
    "scripts/mlstack.egg-info/PKG-INFO",
    "webapp/mlstack_webapp.egg-info/PKG-INFO",
    "build/lib/mlstack/__init__.py",
    "reporting/workspace/project.json",
    "test-output/report.html",
    ".pytest_cache/v/cache/lastfailed",
    "tests/test_x.py",
    "tests/docker/compose/serving.yml",
    "benchmarks/serving.py",
    "benchmarks/sample_data.py",
    "docs/docker.md",
    "k8s/serving.yaml",
    "monitoring/docker-compose.yml",
    "requirements-dev.txt",
    "compose.yml",
    "Makefile",
    "tools/setup-machine.sh",
    "serving/Dockerfile",
    "serving/.env",
)
MUST_GO_IN = (
    "requirements.lock",
    "requirements-shared.txt",
    "pyproject.toml",
    "README.md",
    "scripts/mlstack/__init__.py",
    "tools/docker-entrypoint.sh",
    "tools/slim-site-packages.sh",
    "serving/api.py",
    "serving/requirements.txt",
    "webapp/api.py",
    "webapp/pyproject.toml",
    "webapp/mlstack_webapp/__init__.py",
    "webapp/requirements.txt",
    "webapp/overrides.txt",
    "reporting/project.py",
    "reporting/metrics_exporter.py",
    "reporting/requirements.txt",
    "reporting/overrides.txt",
)


def test_dockerignore_keeps_data_models_and_caches_out(docker_engine: str, tmp_path: Path) -> None:
    context = tmp_path / "repo"
    for name in (*MUST_GO_IN, ".dockerignore"):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, context / name)
    for name in MUST_STAY_OUT:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text("must not reach the image\n")

    tag = f"mlstack-e2e/context-probe:{uuid.uuid4().hex[:8]}"
    dockerfile = "FROM python:3.11-slim\nCOPY . /ctx\nRUN find /ctx -type f > /files.txt\n"
    try:
        built = subprocess.run(
            ["docker", "build", "-q", "--network", "none", "-t", tag, "-f", "-", str(context)],
            input=dockerfile,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert built.returncode == 0, built.stderr
        listed = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", tag, "cat", "/files.txt"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.split()
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
    files = {name.removeprefix("/ctx/") for name in listed}
    assert files >= set(MUST_GO_IN), sorted(files)
    leaked = sorted(files & set(MUST_STAY_OUT))
    assert not leaked, f"in the build context: {leaked}"
