"""Fixtures shared by every part of the suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlstack.pipeline import bootstrap
from mlstack.settings import PipelineSettings

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project root with ref_data.csv, artifacts and samples, built once per run."""
    root = tmp_path_factory.mktemp("trained")
    bootstrap(PipelineSettings(project_root=root))
    return root


@pytest.fixture
def project(trained_root: Path, tmp_path: Path) -> PipelineSettings:
    """A private copy of the trained project, free to modify."""
    root = tmp_path / "project"
    shutil.copytree(trained_root, root, symlinks=True)
    return PipelineSettings(project_root=root)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`-n`, `--dist loadgroup`) each test file runs on one worker,
    so a file's module-scoped servers start once; the Docker tests all share one worker
    (their containers have fixed names and one engine) while the others run beside them."""
    for item in items:
        group = "docker" if item.get_closest_marker("docker") else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
