"""The metrics exporter (mlstack.reporting.exporter, reporting/metrics_exporter.py) on
real ref_data.csv/prod_data.csv files: figures with known answers, and the real
exporter process over HTTP as the data changes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlstack.fake_feedback import append_feedback
from mlstack.reporting.exporter import compute
from mlstack.settings import PipelineSettings, ReportingSettings

from tests.monitoring.servers import Process, clean_env, free_port, scrape, wait_until


def reference(project: PipelineSettings) -> pd.DataFrame:
    return pd.read_csv(project.ref_data_path)


def features(ref: pd.DataFrame) -> list[str]:
    return [c for c in ref.columns if c.startswith("PCA_")]


def settings_for(project: PipelineSettings, **extra) -> ReportingSettings:
    return ReportingSettings(project_root=project.project_root, **extra)


def test_perfect_predictions_score_one(project: PipelineSettings) -> None:
    ref = reference(project)
    rows = ref.sample(200, random_state=0)
    targets = rows["target"].tolist()
    append_feedback(project, rows[features(ref)].to_numpy(), targets, targets)
    values = compute(settings_for(project)).values
    for name in ("f1", "precision", "recall", "balanced_accuracy", "accuracy"):
        assert values[name] == pytest.approx(1.0), name
    assert values["prod_rows"] == values["window_rows"] == 200
    assert values["ref_rows"] == len(ref)


def test_half_wrong_in_every_class_scores_one_half(project: PipelineSettings) -> None:
    """Each label: 20 rows, 10 predicted right and 10 predicted as the next label.
    Then each label's recall is 10/20 and each predicted label's precision is
    10/(10 + 10): every macro figure and the balanced accuracy are 0.5."""
    ref = reference(project)
    labels = sorted(ref["target"].unique())
    vectors, targets, predictions = [], [], []
    for i, label in enumerate(labels):
        rows = ref[ref["target"] == label].head(20)
        vectors.append(rows[features(ref)].to_numpy())
        targets += [label] * 20
        predictions += [label] * 10 + [labels[(i + 1) % len(labels)]] * 10
    append_feedback(project, np.vstack(vectors), targets, predictions)
    values = compute(settings_for(project)).values
    for name in ("f1", "precision", "recall", "balanced_accuracy", "accuracy"):
        assert values[name] == pytest.approx(0.5), name


def test_drift_share_tells_shifted_data_from_reference_data(project: PipelineSettings) -> None:
    ref = reference(project)
    columns = features(ref)
    same = ref.sample(500, random_state=1)
    append_feedback(
        project, same[columns].to_numpy(), same["target"].tolist(), same["target"].tolist()
    )
    calm = compute(settings_for(project)).values
    assert calm["drift_share"] < 0.5
    assert calm["dataset_drift"] == 0
    assert calm["columns"] == len(columns)

    project.prod_data_path.unlink()
    shifted = same[columns].to_numpy() + 3 * ref[columns].std().to_numpy()
    append_feedback(project, shifted, same["target"].tolist(), same["target"].tolist())
    drifted = compute(settings_for(project)).values
    assert drifted["drift_share"] == pytest.approx(1.0)
    assert drifted["drifted_columns"] == len(columns)
    assert drifted["dataset_drift"] == 1


def test_window_keeps_the_newest_rows(project: PipelineSettings) -> None:
    ref = reference(project)
    rows = ref.sample(150, random_state=2)
    targets = rows["target"].tolist()
    wrong = [(t + 1) % 10 for t in targets[:100]]
    append_feedback(project, rows[features(ref)].to_numpy(), targets, wrong + targets[100:])
    values = compute(settings_for(project, report_window_rows=50)).values
    assert values["prod_rows"] == 150
    assert values["window_rows"] == 50
    assert values["f1"] == pytest.approx(1.0)
    assert compute(settings_for(project)).values["accuracy"] == pytest.approx(50 / 150)


def test_few_rows_give_quality_but_no_drift(project: PipelineSettings) -> None:
    ref = reference(project)
    rows = ref.head(3)
    append_feedback(project, rows[features(ref)].to_numpy(), rows["target"].tolist(), [0, 0, 0])
    values = compute(settings_for(project)).values
    assert "drift_share" not in values
    assert values["window_rows"] == 3
    assert "f1" in values


@pytest.mark.slow
def test_exporter_process_follows_the_data(project: PipelineSettings, tmp_path: Path) -> None:
    """The real exporter on a port: no reference yet (up 0, errors counted), then a
    reference and no feedback, then feedback rows, each picked up without a restart."""
    ref_copy = tmp_path / "ref_data.csv"
    shutil.move(project.ref_data_path, ref_copy)
    port = free_port()
    env = clean_env(
        DATA_DIR=str(project.data_dir),
        EXPORTER_HOST="127.0.0.1",
        EXPORTER_PORT=str(port),
        REPORT_REFRESH_SECONDS="0.3",
    )
    process = Process(
        [sys.executable, "-m", "mlstack.reporting.exporter"],
        cwd=tmp_path,
        env=env,
        log=tmp_path / "exporter.log",
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:

        def page() -> dict[str, float]:
            process.check_alive()
            return scrape(url)

        missing = wait_until(
            lambda: (p := page()).get("mlstack_report_errors_total{}", 0) >= 1 and p,
            60,
            "the exporter to report the missing reference",
        )
        assert missing["mlstack_report_up{}"] == 0
        assert "mlstack_report_f1{}" not in missing

        shutil.move(ref_copy, project.ref_data_path)
        empty = wait_until(
            lambda: (p := page())["mlstack_report_up{}"] == 1 and p, 30, "the reference"
        )
        assert empty["mlstack_report_prod_rows{}"] == 0
        assert "mlstack_report_f1{}" not in empty

        ref = reference(project)
        rows = ref.sample(40, random_state=3)
        targets = rows["target"].tolist()
        append_feedback(project, rows[features(ref)].to_numpy(), targets, targets)
        full = wait_until(
            lambda: (p := page()).get("mlstack_report_prod_rows{}") == 40 and p,
            30,
            "the exporter to pick up 40 feedback rows",
        )
        assert full["mlstack_report_f1{}"] == pytest.approx(1.0)
        assert full["mlstack_report_balanced_accuracy{}"] == pytest.approx(1.0)
        assert 0 <= full["mlstack_report_drift_share{}"] <= 1
        assert full["mlstack_report_last_success_timestamp_seconds{}"] > 1.7e9
    finally:
        process.stop()
