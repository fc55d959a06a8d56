"""The report of one batch of feedback rows against the reference: row count, data
drift of the embedding columns (and, for a table, of its own columns), classification
quality, contested and burst rows; and the report of one retraining's gate decision."""

from __future__ import annotations

import warnings

import pandas as pd
from evidently import DataDefinition, Dataset, MulticlassClassification, Report
from evidently.metrics import F1ByLabel, PrecisionByLabel, RecallByLabel, RowCount, ValueDrift
from sklearn.exceptions import UndefinedMetricWarning

from .. import drift
from ..prod_store import LABEL_COLUMNS
from ..tabular import NUMBER
from .data import FLAG_COLUMNS, Batch, Inputs, feedback_flags
from .evidently_metrics import EmbeddingDrift, flag_metrics, gate_metrics, score_metrics


def data_definition(
    features: list[str], with_prediction: bool, table: dict[str, str] | None = None
) -> DataDefinition:
    """With predictions on both sides, a multiclass task (for Evidently's per-class
    figures and confusion matrix). Without a model, the reference has no prediction
    column, and Evidently refuses a task whose prediction is on one side only: the
    labels are then plain columns, which the headline figures read all the same."""
    table = table or {}
    numbers = [*features, *(c for c, kind in table.items() if kind == NUMBER)]
    categories = [c for c, kind in table.items() if kind != NUMBER]
    if not with_prediction:
        return DataDefinition(
            numerical_columns=numbers, categorical_columns=[*categories, "target"]
        )
    target, prediction = LABEL_COLUMNS
    return DataDefinition(
        numerical_columns=numbers,
        categorical_columns=categories,
        classification=[MulticlassClassification(target=target, prediction_labels=prediction)],
    )


def build_report(
    features: list[str],
    with_reference_quality: bool,
    drift_share: float,
    table: dict[str, str] | None = None,
) -> Report:
    metrics: list = [
        RowCount(),
        # The PCA columns only, not target/prediction, with the stack's one drift test:
        # its share is the dashboard's, the exporter's and the drift trigger's figure.
        EmbeddingDrift(columns=features, **drift.evidently_options(drift_share)),
        *score_metrics(),
        *flag_metrics(),
    ]
    # A table's own columns: one drift result each (numbers by the same test, categories
    # by Evidently's pick for categories), outside the share above.
    for column, kind in (table or {}).items():
        if kind == NUMBER:
            metrics.append(ValueDrift(column=column, method=drift.METHOD, threshold=drift.P_VALUE))
        else:
            metrics.append(ValueDrift(column=column))
    if with_reference_quality:
        # Evidently's per-class figures need the prediction column on both sides.
        metrics += [F1ByLabel(), PrecisionByLabel(), RecallByLabel()]
    return Report(metrics)


def reference_dataset(inputs: Inputs) -> Dataset:
    """The reference side of every batch's report: built once per run and shared (its
    column statistics and the reference's figures are computed once)."""
    definition = data_definition(
        inputs.features, inputs.reference_has_prediction, inputs.table_columns
    )
    # Evidently's legacy confusion matrix refuses a column present on one side only: the
    # reference carries the flag columns as zeros (flag_metrics read the current side only)
    return Dataset.from_pandas(
        inputs.reference.assign(**{column: 0 for column in FLAG_COLUMNS}),
        data_definition=definition,
    )


def run_batch(inputs: Inputs, batch: Batch, drift_share: float, reference: Dataset | None = None):
    """The snapshot of `batch` (against `reference`, reference_dataset(inputs) when None)."""
    rows = batch.rows
    table = inputs.table_columns
    definition = data_definition(inputs.features, inputs.reference_has_prediction, table)
    # contested / burst: plain 0/1 columns of the current rows only, read by flag_metrics
    flags = feedback_flags(rows, inputs.features, inputs.burst_rule)
    current = Dataset.from_pandas(
        pd.concat([rows[[*inputs.features, *table, *LABEL_COLUMNS]], flags], axis=1),
        data_definition=definition,
    )
    if reference is None:
        reference = reference_dataset(inputs)
    versions = sorted({str(v) for v in rows.get("model_version", pd.Series(dtype=str)).dropna()})
    metadata = {
        "batch": batch.key,
        "first_row": str(batch.start + 1),
        "last_row": str(batch.stop),
        "model_versions": ",".join(versions),
        "complete": str(batch.complete).lower(),
    }
    report = build_report(inputs.features, inputs.reference_has_prediction, drift_share, table)
    with warnings.catch_warnings():
        # per-class precision of a label never predicted in the batch: 0, as in the figures
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return report.run(
            current,
            reference,
            timestamp=batch.time,
            metadata=metadata,
            tags=["feedback"] + [f"model_v{v}" for v in versions],
            name=f"Feedback rows {batch.start + 1}-{batch.stop}",
        )


def gate_row(entry: dict) -> dict[str, float]:
    """The figures of one retraining (an ArtifactStore.history() entry with a gate)."""
    gate = entry["gate"]
    accepted = bool(gate.get("accepted", True))
    row = {"accepted": float(accepted), "rejected": float(not accepted)}
    for side in ("candidate", "champion"):
        f1 = ((gate.get(side) or {}).get("reference") or {}).get("f1_macro")
        if f1 is not None:
            row[f"{side}_f1"] = float(f1)
    return row


def run_gate(entry: dict):
    """The snapshot of one retraining's gate decision, at the time the candidate was
    trained: one row (its figures), no reference."""
    gate = entry["gate"]
    row = gate_row(entry)
    accepted = bool(row["accepted"])
    version = entry["version"]
    rows = entry.get("rows") or {}
    metadata = {
        "version": str(version),
        "decision": "accepted" if accepted else "rejected",
        "reason": str(gate.get("reason", ""))[:500],
        "champion_version": str(gate.get("champion_version", "")),
        "trained_on_contested": str(bool(gate.get("trained_on_contested", False))).lower(),
        "second_try": str("first_try" in gate).lower(),
        **{k: str(rows[k]) for k in ("prod", "prod_contested", "prod_burst") if k in rows},
    }
    frame = pd.DataFrame([row])
    current = Dataset.from_pandas(frame, data_definition=DataDefinition(numerical_columns=[*row]))
    report = Report(gate_metrics(set(row)))
    return report.run(
        current,
        None,
        timestamp=pd.Timestamp(entry["trained_at"]).to_pydatetime(),
        metadata=metadata,
        tags=["gate", metadata["decision"], f"model_v{version}"],
        name=f"Retraining: version {version} {metadata['decision']}",
    )
