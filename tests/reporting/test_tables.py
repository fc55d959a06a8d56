"""The report of a table data set (DATASET_CSV): beside the PCA columns' drift, each of
the table's own columns has its drift result, read back from prod_data.csv's vectors, so
a user sees which measured quantity moved."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
from evidently.ui.workspace import Workspace
from mlstack.artifacts import ArtifactStore
from mlstack.fake_feedback import write_feedback
from mlstack.prod_store import prod_columns
from mlstack.reporting.run import run_once
from mlstack.settings import PipelineSettings, ReportingSettings
from mlstack.tabular import load_table

from tests.reporting.conftest import load_snapshots, metric_values

ROWS = 100
SHIFT = 3.0  # alcohol, in its own unit (the wine's range is about 11 to 15)


def feedback_with_more_alcohol(settings: PipelineSettings) -> pd.DataFrame:
    """ROWS rows drawn from the table, alcohol raised by SHIFT, embedded and answered by
    the model in use, as /feedback would store them."""
    table = load_table(settings.dataset_csv, settings.target_column)
    artifacts = ArtifactStore(settings.artifacts_dir).load()
    picked = table.features.sample(ROWS, replace=True, random_state=1)
    labels = table.labels[picked.index.to_numpy()]
    raised = picked.assign(alcohol=picked["alcohol"] + SHIFT).reset_index(drop=True)
    vectors = artifacts.embedding.transform_frame(raised)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    frame = pd.DataFrame(vectors, columns=artifacts.embedding.columns)
    frame["target"] = labels
    frame["prediction"] = artifacts.classifier.predict(vectors)
    frame["timestamp"] = [(start + timedelta(minutes=i)).isoformat() for i in range(ROWS)]
    frame["model_version"] = artifacts.version
    frame["prediction_id"] = [str(uuid.uuid4()) for _ in range(ROWS)]
    return frame[prod_columns(artifacts.embedding.n_components)]


def test_a_tables_report_shows_drift_of_its_own_columns(table_project: PipelineSettings) -> None:
    write_feedback(feedback_with_more_alcohol(table_project), table_project.prod_data_path)
    root = table_project.project_root
    settings = ReportingSettings(
        project_root=root, workspace_dir=root / "workspace", report_batch_rows=ROWS
    )
    summary = run_once(settings)
    assert summary.added == 1, summary
    [snapshot] = load_snapshots(settings.workspace_dir, summary.project_id)
    values = metric_values(snapshot)
    schema = load_table(table_project.dataset_csv, table_project.target_column).schema
    drifts = {
        key.split(":", 1)[1]: result
        for key, (_, result) in values.items()
        if key.startswith("ValueDrift:")
    }
    # Every column of the table has its result, beside the PCA columns'.
    assert set(schema.names) <= set(drifts)
    assert any(name.startswith("PCA_") for name in drifts)
    # The moved quantity drifts (p-value of the KS test at most 0.05); the others, drawn
    # from the table itself, mostly do not.
    assert drifts["alcohol"]["value"] <= 0.05
    steady = [n for n in schema.numeric if n != "alcohol" and drifts[n]["value"] <= 0.05]
    assert len(steady) <= 2, steady
    # A category column is reported too (Evidently's test for categories).
    assert "colour" in drifts
    # The headline drift share is still the PCA columns' alone.
    features = [name for name in drifts if name.startswith("PCA_")]
    shared = values["DriftedColumnsCount"][1]["count"]["value"]
    assert 0 <= shared <= len(features)
    # And the dashboard plots each numeric column's drift test, batch after batch.
    project = Workspace(str(settings.workspace_dir)).list_projects()[0]
    [panel] = [p for p in project.dashboard.model().panels if "own columns" in p.title]
    legends = {value.legend for value in panel.values}
    assert legends == set(schema.numeric)
