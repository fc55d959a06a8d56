"""The GitHub Actions workflow: valid against the workflow schema (offline, the one
check-jsonschema ships), running what .ci/run runs, and publishing the three images
on a version tag."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_workflow_is_valid_against_the_github_schema() -> None:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is None:
        pytest.fail("check-jsonschema is missing from the test environment (requirements-dev)")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_push_and_pull_requests_run_the_ci_command() -> None:
    workflow = load()
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1: on = true
    assert set(triggers) >= {"push", "pull_request"}
    runs = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert any("bash .ci/run" in run for run in runs), runs
    # .ci/run is the README's test command, so the three agree.
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text().split("\n## ")[0]


def test_a_version_tag_pushes_the_three_images() -> None:
    workflow = load()
    triggers = workflow[True] if True in workflow else workflow["on"]
    assert "v*" in triggers["push"]["tags"]
    images = workflow["jobs"]["images"]
    assert images["needs"] == "test"
    assert "refs/tags/v" in images["if"]
    assert images["strategy"]["matrix"]["service"] == ["serving", "webapp", "reporting"]
    build = next(s for s in images["steps"] if "build-push-action" in s.get("uses", ""))
    assert build["with"]["push"] is True
    assert build["with"]["file"] == "${{ matrix.service }}/Dockerfile"
    assert all((ROOT / s / "Dockerfile").is_file() for s in ("serving", "webapp", "reporting"))
    assert "VERSION" in build["with"]["tags"]
