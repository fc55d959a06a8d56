"""A feedback batch's snapshot holds Evidently's own drift results (those of its
DataDriftPreset on the same rows) and shows them as the preset's counters and table,
without drawing two plotly figures per PCA column (most of a snapshot's time)."""

from __future__ import annotations

import json

import pytest
from evidently.presets import DataDriftPreset
from mlstack.reporting import report
from mlstack.reporting.data import batch_size, load_inputs, split_batches

from tests.reporting.conftest import Built, load_snapshots, metric_values, snapshot_files


def _without_widgets(values: dict) -> dict:
    return {
        key: {k: v for k, v in result.items() if k != "widget"}
        for key, (_, result) in values.items()
    }


def test_every_result_is_that_of_evidentlys_own_preset(
    built: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = load_inputs(built.settings)
    batches = split_batches(
        inputs.prod, batch_size(len(inputs.prod), built.settings), built.settings
    )
    reference = report.reference_dataset(inputs)
    for batch in batches:
        ours = report.run_batch(inputs, batch, 0.5, reference).to_snapshot_model().dict()
        with monkeypatch.context() as patch:
            patch.setattr(report, "EmbeddingDrift", DataDriftPreset)
            theirs = report.run_batch(inputs, batch, 0.5).to_snapshot_model().dict()
        ours_values, their_values = metric_values(ours), metric_values(theirs)
        assert _without_widgets(ours_values) == _without_widgets(their_values), batch.key
        # Evidently's preset draws every column's ValueDrift (stored, not shown); ours not
        assert their_values["ValueDrift:PCA_1"][1]["widget"]
        assert ours_values["ValueDrift:PCA_1"][1]["widget"] == []
        assert len(json.dumps(ours, default=str)) < len(json.dumps(theirs, default=str)) / 5


def test_the_report_view_shows_the_drift_counters_and_table(built: Built) -> None:
    for snap in load_snapshots(built.workspace, built.project_id):
        values = metric_values(snap)
        drifted = int(values["DriftedColumnsCount"][1]["count"]["value"])
        [table] = [w for w in snap["widgets"] if w["type"] == "big_table"]
        rows = {row["column_name"]: row for row in table["params"]["data"]}
        p_values = {k.split(":", 1)[1]: r["value"] for k, (_, r) in values.items() if "Drift:" in k}
        assert set(rows) == set(p_values)  # one row per PCA column
        for column, row in rows.items():
            assert row["drift_score"] == round(p_values[column], 6)
            assert row["data_drift"] == ("Detected" if p_values[column] <= 0.05 else "Not Detected")
            assert row["stattest_name"] == "K-S p_value"
        assert sum(row["data_drift"] == "Detected" for row in rows.values()) == drifted
        assert f"({drifted} out of {len(rows)})" in table["title"]
        # most drifted first, as Evidently's table
        scores = [row["drift_score"] for row in table["params"]["data"]]
        assert scores == sorted(scores)
        counters = [
            c for w in snap["widgets"] if w["type"] == "counter" for c in w["params"]["counters"]
        ]
        assert {"label": "Drifted Columns", "value": str(drifted)} in counters
    # a snapshot is about 2 MB with Evidently's per-column figures
    assert (
        max(p.stat().st_size for p in snapshot_files(built.workspace, built.project_id)) < 200_000
    )
