"""A trained project with generated feedback and the Evidently workspace built from it."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from mlstack.fake_feedback import make_feedback, write_feedback
from mlstack.pipeline import bootstrap
from mlstack.reporting.run import run_once
from mlstack.settings import PipelineSettings, ReportingSettings

from tests.support.tables import table_project, table_root  # noqa: F401  (fixtures)

BATCH = 100
COMPONENTS = 8


@dataclass
class Built:
    pipeline: PipelineSettings
    settings: ReportingSettings
    prod: pd.DataFrame
    project_id: str

    @property
    def workspace(self) -> Path:
        return self.settings.workspace_dir


def settings_for(pipeline: PipelineSettings, **extra) -> ReportingSettings:
    """The project's data and artifacts, its own workspace, batches of BATCH rows."""
    root = pipeline.project_root
    return ReportingSettings(
        project_root=root, workspace_dir=root / "workspace", report_batch_rows=BATCH, **extra
    )


def two_labels(rows: pd.DataFrame, pair: tuple[int, int]) -> pd.DataFrame:
    """Keep predictions within the pair: a prediction outside it becomes the other label."""
    rows = rows.copy()
    outside = ~rows["prediction"].isin(pair)
    rows.loc[outside, "prediction"] = sum(pair) - rows.loc[outside, "target"]
    return rows


def feedback(pipeline: PipelineSettings) -> pd.DataFrame:
    """Three batches: all labels; only labels 0 and 1; a partial batch of labels 3 and 5."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    parts = [
        make_feedback(pipeline, BATCH, seed=1, drift=0.3, start=start),
        two_labels(
            make_feedback(
                pipeline, BATCH, seed=2, drift=1.2, start=start + timedelta(days=1), labels=[0, 1]
            ),
            (0, 1),
        ),
        two_labels(
            make_feedback(
                pipeline, 40, seed=3, drift=2.0, start=start + timedelta(days=2), labels=[3, 5]
            ),
            (3, 5),
        ),
    ]
    return pd.concat(parts, ignore_index=True)


def append_rows(pipeline: PipelineSettings, rows: int, seed: int, day: str) -> None:
    more = make_feedback(pipeline, rows, seed=seed, drift=2.0, start=pd.Timestamp(day, tz="UTC"))
    write_feedback(more, pipeline.prod_data_path, append=True)


def snapshot_files(workspace: Path, project_id: str) -> list[Path]:
    return sorted((workspace / project_id / "snapshots").glob("*.json"))


def metric_values(snapshot: dict) -> dict[str, tuple[dict, dict]]:
    """metric type -> (params, result) of every result in a stored snapshot."""
    out = {}
    for result in snapshot["metric_results"].values():
        location = result["metric_value_location"]["metric"]["params"]
        name = location["type"].rsplit(":", 1)[-1]
        key = name if "column" not in location else f"{name}:{location['column']}"
        out[key] = (location, result)
    return out


def load_snapshots(workspace: Path, project_id: str) -> list[dict]:
    snaps = [json.loads(p.read_text()) for p in snapshot_files(workspace, project_id)]
    return sorted(snaps, key=lambda s: int(s["metadata"]["first_row"]))


@pytest.fixture(scope="session")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained project with 8 components: the same pipeline, a quicker drift report."""
    root = tmp_path_factory.mktemp("reporting-trained")
    bootstrap(PipelineSettings(project_root=root, n_components=COMPONENTS))
    return root


def copy_project(source: Path, target: Path) -> PipelineSettings:
    shutil.copytree(source, target, symlinks=True)
    return PipelineSettings(project_root=target, n_components=COMPONENTS)


@pytest.fixture(scope="module")
def built(small_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A copy of the trained project, its feedback, and one run of project.py over them."""
    root = tmp_path_factory.mktemp("reporting") / "project"
    pipeline = copy_project(small_root, root)
    prod = feedback(pipeline)
    write_feedback(prod, pipeline.prod_data_path)
    settings = settings_for(pipeline)
    summary = run_once(settings)
    assert summary.added == 3, summary
    return Built(pipeline, settings, prod, summary.project_id)
