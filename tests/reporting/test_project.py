"""mlstack.reporting (reporting/project.py) on a real trained project: the workspace, its
snapshots and panels, the figures against scikit-learn, two-label batches, missing
feedback or model, and re-runs."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, MulticlassClassification, Report
from evidently.metrics import F1Score
from evidently.ui.workspace import Workspace
from mlstack.artifacts import ArtifactStore
from mlstack.fake_feedback import make_feedback, write_feedback
from mlstack.reporting.dashboard import DASHBOARD_VERSION, panels
from mlstack.reporting.run import run_once
from mlstack.settings import PipelineSettings, ReportingSettings
from sklearn import metrics as skm

from tests.conftest import REPO_ROOT
from tests.reporting.conftest import (
    BATCH,
    Built,
    append_rows,
    copy_project,
    load_snapshots,
    metric_values,
    settings_for,
    snapshot_files,
)

SCORES = {
    "MulticlassF1": lambda t, p: skm.f1_score(t, p, average="macro"),
    "BalancedAccuracy": skm.balanced_accuracy_score,
    "MulticlassPrecision": lambda t, p: skm.precision_score(t, p, average="macro", zero_division=0),
    "MulticlassRecall": lambda t, p: skm.recall_score(t, p, average="macro", zero_division=0),
    "MulticlassAccuracy": skm.accuracy_score,
}


def test_the_workspace_holds_the_project_its_snapshots_and_panels(built: Built) -> None:
    workspace = Workspace(str(built.workspace))
    projects = workspace.list_projects()
    assert [p.name for p in projects] == [built.settings.report_project_name]
    project = projects[0]
    assert len(workspace.list_runs(project.id)) == 3

    titles = [p.title for p in project.dashboard.model().panels]
    assert titles == [p.title for p in panels()]
    assert len(titles) >= 7

    snaps = load_snapshots(built.workspace, built.project_id)
    assert [(s["metadata"]["first_row"], s["metadata"]["last_row"]) for s in snaps] == [
        ("1", "100"),
        ("101", "200"),
        ("201", "240"),
    ]
    for snap in snaps:
        first, last = int(snap["metadata"]["first_row"]), int(snap["metadata"]["last_row"])
        rows = built.prod.iloc[first - 1 : last]
        # the snapshot's time is the newest feedback time in its batch
        assert pd.Timestamp(snap["timestamp"]) == pd.Timestamp(rows["timestamp"].max())
        values = metric_values(snap)
        assert values["RowCount"][1]["value"] == len(rows)
        # drift covers the PCA columns and nothing else
        drifted = {k.split(":", 1)[1] for k in values if k.startswith("ValueDrift:")}
        features = [c for c in built.prod.columns if c.startswith("PCA_")]
        assert drifted == set(features)
        result = values["DriftedColumnsCount"][1]
        assert 0 <= result["count"]["value"] <= len(features)
        assert 0.0 <= result["share"]["value"] <= 1.0
    # the noise grows batch after batch: the last batch drifts more than the first, which
    # is close to the reference and must not be flagged by sampling noise alone
    shares = [metric_values(s)["DriftedColumnsCount"][1]["share"]["value"] for s in snaps]
    assert shares[0] <= 0.25, shares
    assert shares[-1] > shares[0]


def test_the_figures_equal_scikit_learn_on_the_same_rows(built: Built) -> None:
    for snap in load_snapshots(built.workspace, built.project_id):
        first, last = int(snap["metadata"]["first_row"]), int(snap["metadata"]["last_row"])
        rows = built.prod.iloc[first - 1 : last]
        values = metric_values(snap)
        for name, score in SCORES.items():
            expected = score(rows["target"], rows["prediction"])
            assert values[name][1]["value"] == pytest.approx(expected, abs=1e-12), (name, first)
        # per-class figures are Evidently's own: they match scikit-learn's too
        labels = sorted(set(rows["target"]) | set(rows["prediction"]))
        f1s = skm.f1_score(rows["target"], rows["prediction"], labels=labels, average=None)
        by_label = {str(k): v["value"] for k, v in values["F1ByLabel"][1]["values"].items()}
        assert by_label == pytest.approx({str(k): v for k, v in zip(labels, f1s, strict=True)})


def test_the_reference_side_is_the_model_on_the_reference_rows(built: Built) -> None:
    ref = pd.read_csv(built.pipeline.ref_data_path)
    features = [c for c in ref.columns if c.startswith("PCA_")]
    predicted = (
        ArtifactStore(built.pipeline.artifacts_dir)
        .load()
        .classifier.predict(ref[features].to_numpy())
    )
    expected = skm.f1_score(ref["target"], predicted, average="macro")
    # ref_data.csv is the model's training data: its fit there is near perfect
    assert expected > 0.95
    for snap in load_snapshots(built.workspace, built.project_id):
        shown = counters(snap["widgets"])
        assert shown["F1 (macro) (reference)"] == f"{expected:.3f}"
        balanced = skm.balanced_accuracy_score(ref["target"], predicted)
        assert shown["Balanced accuracy (reference)"] == f"{balanced:.3f}"
        assert "Confusion Matrix" in str(snap["widgets"])


def counters(widgets) -> dict[str, str]:
    """title -> first counter value of every counter widget, however deep."""
    found: dict[str, str] = {}
    stack = [widgets]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if item.get("type") == "counter" and item.get("params", {}).get("counters"):
                found[item["title"]] = item["params"]["counters"][0]["value"]
            stack.extend(v for v in item.values() if isinstance(v, (list, dict)))
    return found


def test_a_batch_with_two_labels_keeps_multiclass_maths(built: Built) -> None:
    snaps = load_snapshots(built.workspace, built.project_id)
    for snap, pair in ((snaps[1], {0, 1}), (snaps[2], {3, 5})):
        first, last = int(snap["metadata"]["first_row"]), int(snap["metadata"]["last_row"])
        rows = built.prod.iloc[first - 1 : last]
        assert set(rows["target"]) | set(rows["prediction"]) == pair
        macro = skm.f1_score(rows["target"], rows["prediction"], average="macro")
        assert metric_values(snap)["MulticlassF1"][1]["value"] == pytest.approx(macro)

    # Why the guard: Evidently's own F1Score on the {0, 1} batch is the binary F1 of
    # label 1, not the macro average the dashboard promises.
    rows = built.prod.iloc[BATCH : 2 * BATCH][["PCA_1", "target", "prediction"]]
    definition = DataDefinition(
        numerical_columns=["PCA_1"],
        classification=[MulticlassClassification(target="target", prediction_labels="prediction")],
    )
    stock = Report([F1Score()]).run(Dataset.from_pandas(rows, data_definition=definition), None)
    stock_f1 = stock.dict()["metrics"][0]["value"]
    binary = skm.f1_score(rows["target"], rows["prediction"], pos_label=1)
    macro = skm.f1_score(rows["target"], rows["prediction"], average="macro")
    assert stock_f1 == pytest.approx(binary)
    assert stock_f1 != pytest.approx(macro)


def _fresh(built: Built, tmp_path: Path) -> tuple[PipelineSettings, ReportingSettings]:
    """A private copy of the built project and workspace."""
    pipeline = copy_project(built.pipeline.project_root, tmp_path / "project")
    return pipeline, settings_for(pipeline)


def test_rerunning_adds_nothing_and_a_growing_batch_is_replaced(
    built: Built, tmp_path: Path
) -> None:
    pipeline, settings = _fresh(built, tmp_path)
    before = {p.name for p in snapshot_files(settings.workspace_dir, built.project_id)}

    again = run_once(settings)
    assert (again.added, again.replaced, again.project_id) == (0, 0, built.project_id)
    assert {p.name for p in snapshot_files(settings.workspace_dir, built.project_id)} == before

    # 30 more rows land in the partial third batch: its snapshot is replaced, not doubled
    append_rows(pipeline, 30, seed=9, day="2026-03-04")
    grown = run_once(settings)
    assert (grown.added, grown.replaced) == (0, 1)
    snaps = load_snapshots(settings.workspace_dir, built.project_id)
    assert [s["metadata"]["last_row"] for s in snaps] == ["100", "200", "270"]
    assert len(Workspace(str(settings.workspace_dir)).list_projects()) == 1
    assert run_once(settings).added == 0


def test_bigger_batches_are_redone_without_duplicates(built: Built, tmp_path: Path) -> None:
    pipeline, settings = _fresh(built, tmp_path)
    # the file rewritten by another tool, values unchanged: nothing to redo
    prod = pd.read_csv(pipeline.prod_data_path)
    write_feedback(prod, pipeline.prod_data_path)
    assert run_once(settings).replaced == 0

    # at most 2 batches: they grow to 200 rows and every batch is redone once
    fewer = settings.model_copy(update={"report_max_batches": 2})
    regrouped = run_once(fewer)
    assert (regrouped.batches, regrouped.added) == (2, 2)
    snaps = load_snapshots(settings.workspace_dir, built.project_id)
    assert [(s["metadata"]["first_row"], s["metadata"]["last_row"]) for s in snaps] == [
        ("1", "200"),
        ("201", "240"),
    ]
    assert len(Workspace(str(settings.workspace_dir)).list_runs(built.project_id)) == 2


def test_missing_empty_or_tiny_feedback_still_makes_a_valid_project(
    small_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = copy_project(small_root, tmp_path / "project")
    settings = settings_for(pipeline)
    caplog.set_level(logging.INFO, logger="mlstack.reporting")

    def check(expected_log: str) -> None:
        caplog.clear()
        summary = run_once(settings)
        assert (summary.added, summary.batches) == (0, 0)
        workspace = Workspace(str(settings.workspace_dir))
        (project,) = workspace.list_projects()
        assert workspace.list_runs(project.id) == []
        assert len(project.dashboard.model().panels) == len(panels())
        assert expected_log in caplog.text, caplog.text
        assert "panels stay empty" in caplog.text

    pipeline.prod_data_path.unlink(missing_ok=True)
    check("no feedback yet")
    pipeline.prod_data_path.write_text("")
    check("no feedback yet")
    write_feedback(make_feedback(pipeline, 0), pipeline.prod_data_path)  # header only
    check("no feedback yet")
    write_feedback(make_feedback(pipeline, 4), pipeline.prod_data_path)
    check("the last 4 feedback rows wait for 10")
    project_id = run_once(settings).project_id
    state = settings.workspace_dir / project_id / "batches.json"
    assert f'"dashboard": "{DASHBOARD_VERSION}"' in state.read_text()


def test_the_command_line_schedule_picks_up_new_feedback(built: Built, tmp_path: Path) -> None:
    pipeline, settings = _fresh(built, tmp_path)
    names = {p.name for p in snapshot_files(settings.workspace_dir, built.project_id)}
    env = {
        **os.environ,
        "DATA_DIR": str(pipeline.data_dir),
        "ARTIFACTS_DIR": str(pipeline.artifacts_dir),
        "WORKSPACE_DIR": str(settings.workspace_dir),
        "REPORT_BATCH_ROWS": str(BATCH),
        "DO_NOT_TRACK": "1",
    }
    # `python -m mlstack.reporting` (as `python project.py`) runs once even with a schedule
    # in its environment (the container starts the UI after it)
    env["REPORT_EVERY_SECONDS"] = "1"
    once = subprocess.run(
        [sys.executable, "-m", "mlstack.reporting"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert once.returncode == 0, once.stderr[-2000:]
    assert "re-running" not in once.stderr

    # `--every` alone: the schedule of REPORT_EVERY_SECONDS
    log_path = tmp_path / "project.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "project.py", "--every"],
            cwd=REPO_ROOT / "reporting",
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        # its first run finds nothing new: the same snapshots
        deadline = time.monotonic() + 120
        while "snapshots added" not in log_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()[-2000:]
            time.sleep(0.5)
        assert "0 snapshots added, 0 replaced" in log_path.read_text()
        assert {p.name for p in snapshot_files(settings.workspace_dir, built.project_id)} == names

        append_rows(pipeline, 20, seed=11, day="2026-03-05")
        last_rows: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                snaps = load_snapshots(settings.workspace_dir, built.project_id)
            except ValueError:  # a snapshot being written right now
                time.sleep(0.5)
                continue
            last_rows = [s["metadata"]["last_row"] for s in snaps]
            if last_rows == ["100", "200", "260"]:
                break
            time.sleep(0.5)
        assert last_rows == ["100", "200", "260"], log_path.read_text()[-2000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, log_path.read_text()[-2000:]
        assert "re-running every 1 s" in log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_without_a_model_it_runs_and_says_what_it_left_out(
    small_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No artifacts: drift and the current figures are in, the reference side of quality
    is out (it used to die with "Column (prediction) is partially present in data")."""
    pipeline = copy_project(small_root, tmp_path / "project")
    prod = make_feedback(pipeline, 150, seed=5, predicted=False)
    prod.loc[::4, "prediction"] = (prod.loc[::4, "target"] + 1) % 10
    write_feedback(prod, pipeline.prod_data_path)
    shutil.rmtree(pipeline.artifacts_dir)
    settings = settings_for(pipeline)
    caplog.set_level(logging.INFO, logger="mlstack.reporting")

    summary = run_once(settings)
    assert (summary.batches, summary.added) == (2, 2)
    assert "left out without a model: the reference side of the classification" in caplog.text
    for snap in load_snapshots(settings.workspace_dir, summary.project_id):
        first, last = int(snap["metadata"]["first_row"]), int(snap["metadata"]["last_row"])
        rows = prod.iloc[first - 1 : last]
        values = metric_values(snap)
        for name, score in SCORES.items():
            expected = score(rows["target"], rows["prediction"])
            assert values[name][1]["value"] == pytest.approx(expected, abs=1e-12), name
        assert 0.0 <= values["DriftedColumnsCount"][1]["share"]["value"] <= 1.0
        assert "F1ByLabel" not in values
        shown = counters(snap["widgets"])
        for title in ("F1 (macro)", "Balanced accuracy", "Accuracy"):
            assert title in shown
            assert f"{title} (reference)" not in shown
