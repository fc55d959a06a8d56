"""Switching to another data set end to end: a project trained on the digits, with
feedback rows, samples and a reporting workspace, is pointed at a folder of photos or
at a table. What belonged to the digits is moved into one archive folder, nothing is
left mixed in, and the served model answers with the new data set's labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests
from mlstack.archive import (
    DatasetSwitchError,
    dataset_identity,
    is_mount_point,
    is_switch,
    move_aside,
    recorded_identity,
)
from mlstack.artifacts import ArtifactStore
from mlstack.example_images import write_shapes
from mlstack.pipeline import bootstrap, switch_if_needed
from mlstack.settings import PipelineSettings

from tests.support.serving import b64, sample_images, serving_server, start_server
from tests.support.tables import as_features, table_samples, write_table

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
SHAPES = {"circle", "square", "triangle"}


def with_feedback(project: PipelineSettings, tmp_path: Path) -> list[dict]:
    """Three feedback rows through a real API on the digits, and a workspace file."""
    server = start_server(project, tmp_path / "digits.log", PROJECT_ROOT=str(project.project_root))
    try:
        for label, image in sample_images(project)[:3]:
            answer = requests.post(
                f"{server.url}/feedback",
                json={"image": b64(image), "prediction": label, "target": label},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    workspace = project.project_root / "reporting" / "workspace"
    workspace.mkdir(parents=True)
    (workspace / "batches.json").write_text('{"reference": "digits"}')
    return pd.read_csv(project.prod_data_path).to_dict("records")


def run_bootstrap(
    project: PipelineSettings, *command: str, **settings: str
) -> subprocess.CompletedProcess:
    """`python scripts/bootstrap.py` (or `python <command>`) on the project, with
    `settings` as its environment."""
    env = {**os.environ, "PROJECT_ROOT": str(project.project_root), **settings}
    for name in ("DATA_DIR", "ARTIFACTS_DIR", "WORKSPACE_DIR", "DATASET_DIR", "DATASET_CSV"):
        if name not in settings:
            env.pop(name, None)
    return subprocess.run(
        [sys.executable, *(command or [str(ROOT / "scripts" / "bootstrap.py")])],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def the_archive(project: PipelineSettings) -> Path:
    (archive,) = (project.data_dir / "archive").iterdir()
    return archive


def test_bootstrap_on_a_photo_folder_archives_the_digits(
    project: PipelineSettings, tmp_path: Path
) -> None:
    rows = with_feedback(project, tmp_path)
    old_samples = sorted(p.name for p in project.samples_dir.iterdir())
    shapes = write_shapes(tmp_path / "shapes", per_label=20, seed=5)
    done = run_bootstrap(project, DATASET_DIR=str(shapes))
    assert done.returncode == 0, done.stderr

    archive = the_archive(project)
    assert archive.name.endswith("-digits")
    assert pd.read_csv(archive / "data" / "prod_data.csv").to_dict("records") == rows
    assert (archive / "data" / "prod_data.csv.count").exists()
    assert sorted(p.name for p in (archive / "data" / "samples").iterdir()) == old_samples
    assert (archive / "reporting" / "workspace" / "batches.json").read_text() == (
        '{"reference": "digits"}'
    )
    assert (archive / "artifacts" / "versions" / "000001").is_dir()
    assert (archive / "data" / "ref_data.csv").exists()
    # Each move is logged, with the archive it went to.
    assert f"what belonged to the images data set 'digits' is in {archive}" in done.stderr
    assert "prod_data.csv ->" in done.stderr

    # The new data set's own: no feedback rows, its samples, a first version.
    assert not project.prod_data_path.exists() or len(pd.read_csv(project.prod_data_path)) == 0
    assert not (project.project_root / "reporting" / "workspace").exists()
    samples = sorted(p.name for p in project.samples_dir.iterdir())
    assert {name.split("_")[0] for name in samples} == SHAPES
    manifest = json.loads((project.artifacts_dir / "manifest.json").read_text())
    assert manifest["version"] == 1
    assert manifest["extra"]["dataset_id"]["name"] == "shapes"

    server = start_server(project, tmp_path / "shapes.log", DATASET_DIR=str(shapes))
    try:
        (sample,) = [p for p in project.samples_dir.iterdir() if p.name.startswith("square_")][:1]
        answer = requests.post(
            f"{server.url}/predict", json={"image": b64(sample.read_bytes())}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["prediction"] in SHAPES
        assert set(answer.json()["probabilities"]) == SHAPES
    finally:
        server.stop()
    # Started again on the same folder: nothing more is archived.
    assert len(list((project.data_dir / "archive").iterdir())) == 1


def test_the_api_refuses_a_table_until_bootstrap_switches_to_it(
    project: PipelineSettings, tmp_path: Path
) -> None:
    rows = with_feedback(project, tmp_path)
    csv = write_table(tmp_path / "wine_colour.csv")
    env = {"PROJECT_ROOT": str(project.project_root), "DATASET_CSV": str(csv)}
    # The API's start does not switch: a forgotten or mistaken setting would put the
    # user's work aside. It stops, saying how.
    refused = serving_server(project, tmp_path / "refused.log", **env)
    try:
        with pytest.raises(AssertionError, match="exited"):
            refused.start(timeout=60)
    finally:
        refused.stop()
    assert "run `python scripts/bootstrap.py`" in refused.log()
    assert "the table data set 'wine_colour'" in refused.log()
    assert pd.read_csv(project.prod_data_path).to_dict("records") == rows
    assert not (project.data_dir / "archive").exists()

    # What `make switch` runs in the serving image, where there is no scripts/ folder.
    done = run_bootstrap(project, "-m", "mlstack.bootstrap", DATASET_CSV=str(csv))
    assert done.returncode == 0, done.stderr
    archive = the_archive(project)
    assert archive.name.endswith("-digits")
    assert pd.read_csv(archive / "data" / "prod_data.csv").to_dict("records") == rows
    assert (archive / "reporting" / "workspace" / "batches.json").exists()
    assert any((archive / "data" / "samples").glob("*.png"))
    # The table's samples, no digit left beside them.
    assert [p.name for p in project.samples_dir.iterdir()] == ["samples.csv"]

    server = start_server(project, tmp_path / "table.log", **env)
    try:
        table = PipelineSettings(project_root=project.project_root, dataset_csv=csv)
        row = table_samples(table).iloc[0]
        answer = requests.post(
            f"{server.url}/predict", json={"features": as_features(row, table)}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["prediction"] in {"class_0", "class_1", "class_2"}
        model = requests.get(f"{server.url}/model", timeout=30).json()
        assert model["prod_rows"] == 0
        assert model["manifest"]["extra"]["dataset_id"]["kind"] == "table"
        assert [entry["version"] for entry in model["history"]] == [1]  # no digits model
    finally:
        server.stop()


def test_a_forced_rebuild_of_the_same_data_set_keeps_its_rows(project: PipelineSettings) -> None:
    project.prod_data_path.write_text("kept\n")
    artifacts = bootstrap(project, force=True)
    assert artifacts.version == 2
    assert project.prod_data_path.read_text() == "kept\n"
    assert not (project.data_dir / "archive").exists()


def test_artifacts_that_record_only_a_name_are_compared_by_it() -> None:
    digits = dataset_identity(PipelineSettings())
    old = recorded_identity({"dataset": "digits", "kind": "images"})
    assert not is_switch(old, digits)
    assert is_switch(old, dataset_identity(PipelineSettings(dataset_dir=Path("/x/shapes"))))
    assert not is_switch(recorded_identity({}), digits)  # nothing recorded: nothing to compare
    # The folder's path may differ (host or container); its name and features may not.
    here = dataset_identity(PipelineSettings(dataset_dir=Path("/home/me/shapes")))
    there = dataset_identity(PipelineSettings(dataset_dir=Path("/datasets/shapes")))
    grid = dataset_identity(
        PipelineSettings(dataset_dir=Path("/datasets/shapes"), image_features="grid")
    )
    assert not is_switch(here, there)
    assert is_switch(here, grid)


def test_with_a_database_a_switch_is_refused_and_nothing_moves(project: PipelineSettings) -> None:
    """The rows and versions live in PostgreSQL: nothing to move, so the start stops and
    says what to do (refused before the database is ever asked)."""
    project.prod_data_path.write_text("kept\n")
    shapes = project.model_copy(
        update={"dataset_dir": Path("/x/shapes"), "database_url": "postgresql://u@h/db"}
    )
    with pytest.raises(DatasetSwitchError, match="new, empty database") as refused:
        switch_if_needed(shapes, ArtifactStore(project.artifacts_dir), switch=True)
    assert "the images data set 'digits'" in str(refused.value)
    assert "the images data set 'shapes' (/x/shapes)" in str(refused.value)
    assert project.prod_data_path.read_text() == "kept\n"
    assert not (project.data_dir / "archive").exists()


def test_a_mounted_folder_keeps_its_place_and_gives_its_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In `make switch`'s container the reporting workspace is a mount point, which
    cannot be moved: its content goes to the archive and the folder stays."""
    workspace = tmp_path / "workspace"
    (workspace / "project").mkdir(parents=True)
    (workspace / "project" / "batches.json").write_text("{}")
    monkeypatch.setattr(os.path, "ismount", lambda path: Path(path) == workspace)
    moved = move_aside([workspace], tmp_path / "archive", root=tmp_path / "elsewhere")
    assert moved == [(workspace, tmp_path / "archive" / tmp_path.name / "workspace")]
    assert workspace.is_dir()
    assert not any(workspace.iterdir())
    assert (moved[0][1] / "project" / "batches.json").read_text() == "{}"


def test_mount_points_are_told_from_folders(tmp_path: Path) -> None:
    """A mounted folder gives its content to the archive and stays (make switch mounts
    the reporting workspace); os.path.ismount alone misses a bind mount from the same
    file system, which the process's table of mounts names."""
    assert is_mount_point(Path("/"))
    assert not is_mount_point(tmp_path)
    mounts = Path("/proc/self/mountinfo")
    if mounts.exists():
        points = [line.split()[4] for line in mounts.read_text().splitlines()]
        same_device = [Path(p) for p in points if Path(p).is_dir() and not os.path.ismount(p)]
        for point in same_device[:3]:
            assert is_mount_point(point)
