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
