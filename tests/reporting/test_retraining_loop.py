"""The retraining loop in the Evidently project, on a real trained project and real
retrainings: contested and burst rows per feedback batch, and one snapshot per gate
decision (accepted or rejected, candidate and champion F1 on the reference hold-out)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from evidently.ui.workspace import Workspace
from mlstack.artifacts import ArtifactStore
from mlstack.fake_feedback import make_feedback, write_feedback
from mlstack.feedback import burst_mask
from mlstack.reporting.dashboard import panels
from mlstack.reporting.run import run_once
from mlstack.retraining import retrain

from tests.reporting.conftest import (
    BATCH,
    Built,
    copy_project,
    metric_values,
    settings_for,
    snapshot_files,
)


def all_snapshots(workspace: Path, project_id: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in snapshot_files(workspace, project_id)]


def batch_snapshots(workspace: Path, project_id: str) -> list[dict]:
    snaps = [s for s in all_snapshots(workspace, project_id) if "feedback" in s["tags"]]
    return sorted(snaps, key=lambda s: int(s["metadata"]["first_row"]))


def gate_snapshots(workspace: Path, project_id: str) -> list[dict]:
    snaps = [s for s in all_snapshots(workspace, project_id) if "gate" in s["tags"]]
    return sorted(snaps, key=lambda s: int(s["metadata"]["version"]))


def expected_flags(rows: pd.DataFrame, share: float = 0.5, min_rows: int = 20) -> tuple[int, int]:
    """Contested and burst rows counted by hand: target != prediction; a version's
    contested rows when over `share` of its (at least `min_rows`) rows are contested."""
    contested = rows["target"].astype(int) != rows["prediction"].astype(int)
    burst = 0
    for _, group in contested.groupby(rows["model_version"]):
        if len(group) >= min_rows and group.mean() > share:
            burst += int(group.sum())
    return int(contested.sum()), burst


def flag_values(snap: dict) -> dict[str, tuple[float, float]]:
    values = metric_values(snap)
    return {
        name: (values[name][1]["count"]["value"], values[name][1]["share"]["value"])
        for name in ("ContestedRows", "BurstRows")
    }


def test_every_batch_counts_its_contested_rows(built: Built) -> None:
    snaps = batch_snapshots(built.workspace, built.project_id)
    assert len(snaps) == 3
    total = 0
    for snap in snaps:
        first, last = int(snap["metadata"]["first_row"]), int(snap["metadata"]["last_row"])
        rows = built.prod.iloc[first - 1 : last]
        contested, burst = expected_flags(rows)
        shown = flag_values(snap)
        assert shown["ContestedRows"] == (contested, pytest.approx(contested / len(rows)))
        assert shown["BurstRows"] == (burst, pytest.approx(burst / len(rows)))
        total += contested
    # the generated feedback drifts more and more: the model is contradicted somewhere
    assert total > 0
    titles = [p.title for p in panels()]
    assert "Contested feedback rows" in titles
    assert "Gate decision per retraining" in titles
    assert not gate_snapshots(built.workspace, built.project_id)  # the first model: no gate


def test_a_burst_is_the_one_retraining_holds_back(small_root: Path, tmp_path: Path) -> None:
    pipeline = copy_project(small_root, tmp_path / "project")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    quiet = make_feedback(pipeline, BATCH, seed=1, drift=0.0, start=start)
    attack = make_feedback(pipeline, BATCH, seed=2, drift=0.0, start=start + timedelta(days=1))
    for frame in (quiet, attack):  # no row contested but those made so below
        frame["target"] = frame["prediction"]
    # version 7 answered 60 rows of the second batch, 45 of them contradicted (75 %):
    # a burst; version 1's 40 rows there, 5 contradicted, are not
    attack.loc[:59, "model_version"] = 7
    attack.loc[:44, "target"] = (attack.loc[:44, "prediction"] + 1) % 10
    attack.loc[60:64, "target"] = (attack.loc[60:64, "prediction"] + 3) % 10
    prod = pd.concat([quiet, attack], ignore_index=True)
    write_feedback(prod, pipeline.prod_data_path)
    settings = settings_for(pipeline)

    summary = run_once(settings)
    snaps = batch_snapshots(settings.workspace_dir, summary.project_id)
    second = attack
    contested = second["target"] != second["prediction"]
    expected = burst_mask(contested.to_numpy(), second["model_version"].to_numpy(), 0.5, 20)
    assert expected.sum() == 45
    counted = flag_values(snaps[1])
    assert counted["ContestedRows"] == (50, pytest.approx(0.5))
    assert counted["BurstRows"] == (45, pytest.approx(0.45))
    assert flag_values(snaps[0])["BurstRows"][0] == 0


def test_each_retraining_is_a_snapshot_of_its_gate_decision(built: Built, tmp_path: Path) -> None:
    pipeline = copy_project(built.pipeline.project_root, tmp_path / "project")
    settings = settings_for(pipeline)
    store = ArtifactStore(pipeline.artifacts_dir)
    first = retrain(pipeline, reason="feedback")
    strict = retrain(pipeline.model_copy(update={"gate_floor": 0.9999}), reason="feedback")
    assert strict.rejected
    manifests = {m.version: m for m in (first, strict)}

    summary = run_once(settings)
    assert (summary.added, summary.replaced) == (2, 0)  # the batches were already in
    snaps = gate_snapshots(settings.workspace_dir, built.project_id)
    assert [int(s["metadata"]["version"]) for s in snaps] == [2, 3]
    for snap in snaps:
        manifest = manifests[int(snap["metadata"]["version"])]
        gate = manifest.gate
        values = {k: v[1]["value"] for k, v in metric_values(snap).items()}
        assert values["GateAccepted"] == float(gate["accepted"])
        assert values["GateRejected"] == float(not gate["accepted"])
        assert values["CandidateReferenceF1"] == pytest.approx(
            gate["candidate"]["reference"]["f1_macro"]
        )
        assert values["ChampionReferenceF1"] == pytest.approx(
            gate["champion"]["reference"]["f1_macro"]
        )
        assert snap["metadata"]["decision"] == ("accepted" if gate["accepted"] else "rejected")
        assert snap["metadata"]["champion_version"] == str(gate["champion_version"])
        assert pd.Timestamp(snap["timestamp"]) == pd.Timestamp(manifest.trained_at)
        assert snap["metadata"]["decision"] in snap["tags"]
    assert snaps[1]["metadata"]["decision"] == "rejected"
    assert "floor" in snaps[1]["metadata"]["reason"]

    # a re-run adds nothing; the feedback batches are untouched
    assert run_once(settings).added == 0
    assert len(batch_snapshots(settings.workspace_dir, built.project_id)) == 3
    # a pruned version keeps its decision on the dashboard
    rejected_dir = store.version_dir(strict.version)
    for path in sorted(rejected_dir.iterdir()):
        path.unlink()
    rejected_dir.rmdir()
    assert run_once(settings).added == 0
    assert len(gate_snapshots(settings.workspace_dir, built.project_id)) == 2

    # the UI's own reading of the workspace: the snapshots are listed with their tags
    workspace = Workspace(str(settings.workspace_dir))
    (project,) = workspace.list_projects()
    assert len(workspace.list_runs(project.id)) == 5
    assert [p.title for p in project.dashboard.model().panels] == [p.title for p in panels()]
