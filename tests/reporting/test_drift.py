"""One drift test: the exporter behind Grafana's DataDrift alert and the Evidently
report find the same drifted columns, hence the same drift share, on the same rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlstack.drift import P_VALUE, column_drift
from mlstack.fake_feedback import write_feedback
from mlstack.reporting.exporter import compute
from mlstack.reporting.report import build_report

from tests.reporting.conftest import (
    Built,
    copy_project,
    load_snapshots,
    metric_values,
    settings_for,
)


def test_the_exporter_drift_share_is_the_reports(built: Built, tmp_path: Path) -> None:
    ref = pd.read_csv(built.pipeline.ref_data_path)
    features = [c for c in ref.columns if c.startswith("PCA_")]
    snaps = load_snapshots(built.workspace, built.project_id)
    shares = []
    for index, snap in enumerate(snaps):
        first, last = int(snap["metadata"]["first_row"]), int(snap["metadata"]["last_row"])
        # the exporter over a file that holds this batch's rows only
        pipeline = copy_project(built.pipeline.project_root, tmp_path / f"batch{index}")
        write_feedback(built.prod.iloc[first - 1 : last], pipeline.prod_data_path)
        exported = compute(settings_for(pipeline)).values

        values = metric_values(snap)
        report = values["DriftedColumnsCount"][1]
        assert exported["drift_share"] == report["share"]["value"], (first, last)
        assert exported["drifted_columns"] == report["count"]["value"]
        assert exported["dataset_drift"] == float(report["share"]["value"] >= 0.5)
        # column by column: the same test, the same p-values
        drift = column_drift(ref, built.prod.iloc[first - 1 : last], features)
        for column in features:
            p_value = values[f"ValueDrift:{column}"][1]["value"]
            assert drift.p_values[column] == pytest.approx(p_value, rel=1e-9), column
            assert drift.columns[column] == (p_value <= P_VALUE)
        shares.append(drift.share)
    assert len(shares) == 3
    assert shares[-1] > shares[0]  # and it tells drifted batches apart


def test_the_report_is_configured_with_the_same_test() -> None:
    report = build_report(["PCA_1", "PCA_2"], with_reference_quality=True, drift_share=0.3)
    preset = report.metrics[1]
    assert (preset.num_method, preset.num_threshold, preset.drift_share) == ("ks", P_VALUE, 0.3)
