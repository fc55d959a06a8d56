"""A tabular data set for the tests: scikit-learn's wine with a text column added
(`colour`) and missing values in `ash` and `colour`, trained once per run; tests get
a private copy. The settings carry DATASET_CSV, and `table_env` the same for a server."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlstack.examples import wine
from mlstack.pipeline import bootstrap
from mlstack.settings import PipelineSettings

NULLABLE = ("ash", "colour")  # columns with missing values in training
COLOURS = ("red", "rose", "white")


def write_table(path: Path) -> Path:
    frame = wine()
    rng = np.random.default_rng(7)
    # Tied to the label (mostly), so that the category matters to the model.
    by_label = {"class_0": "red", "class_1": "white", "class_2": "rose"}
    colour = [by_label[t] if rng.random() < 0.8 else rng.choice(COLOURS) for t in frame.target]
    frame.insert(1, "colour", colour)
    frame.loc[rng.choice(len(frame), 15, replace=False), "ash"] = np.nan
    frame.loc[rng.choice(len(frame), 10, replace=False), "colour"] = np.nan
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def table_settings(root: Path) -> PipelineSettings:
    return PipelineSettings(project_root=root, dataset_csv=root / "table" / "wine_colour.csv")


def table_env(settings: PipelineSettings) -> dict[str, str]:
    return {"DATASET_CSV": str(settings.dataset_csv), "TARGET_COLUMN": settings.target_column}


def table_samples(settings: PipelineSettings) -> pd.DataFrame:
    """data/samples/samples.csv: held-out rows, their row in ref_data.csv and label."""
    return pd.read_csv(settings.samples_dir / "samples.csv")


def as_features(row: pd.Series, settings: PipelineSettings) -> dict:
    """A samples.csv row as a request's `features` (NaN -> null)."""
    drop = {"ref_row", settings.target_column}
    return {
        k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v)
        for k, v in row.items()
        if k not in drop
    }


@pytest.fixture(scope="session")
def table_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("table")
    write_table(root / "table" / "wine_colour.csv")
    bootstrap(table_settings(root))
    return root


@pytest.fixture
def table_project(table_root: Path, tmp_path: Path) -> PipelineSettings:
    """A private copy of the trained table project (its CSV inside it)."""
    root = tmp_path / "table-project"
    shutil.copytree(table_root, root, symlinks=True)
    return table_settings(root)
