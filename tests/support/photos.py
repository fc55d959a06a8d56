"""A user's photo folder as the data set (DATASET_DIR): coloured shapes on noisy
backgrounds of their own gray level (mlstack.example_images), trained once per run
with the default IMAGE_FEATURES=photo; tests get a private copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlstack.example_images import write_shapes
from mlstack.pipeline import bootstrap
from mlstack.settings import PipelineSettings

PER_LABEL = 80


def photo_settings(root: Path) -> PipelineSettings:
    return PipelineSettings(project_root=root, dataset_dir=root / "shapes")


@pytest.fixture(scope="session")
def photo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    write_shapes(root / "shapes", PER_LABEL, seed=3)
    bootstrap(photo_settings(root))
    return root


@pytest.fixture
def photo_project(photo_root: Path, tmp_path: Path) -> PipelineSettings:
    root = tmp_path / "photos"
    shutil.copytree(photo_root, root, symlinks=True)
    return photo_settings(root)
