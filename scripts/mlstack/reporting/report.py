"""The report of one batch of feedback rows against the reference: row count, data
drift of the embedding columns, classification quality."""

from __future__ import annotations

import warnings

import pandas as pd
from evidently import DataDefinition, Dataset, MulticlassClassification, Report
from evidently.metrics import F1ByLabel, PrecisionByLabel, RecallByLabel, RowCount
from evidently.presets import DataDriftPreset
from sklearn.exceptions import UndefinedMetricWarning

from .. import drift
from ..prod_store import LABEL_COLUMNS
from .data import Batch, Inputs
from .evidently_metrics import score_metrics


def data_definition(features: list[str], with_prediction: bool) -> DataDefinition:
    """With predictions on both sides, a multiclass task (for Evidently's per-class
    figures and confusion matrix). Without a model, the reference has no prediction
    column, and Evidently refuses a task whose prediction is on one side only: the
    labels are then plain columns, which the headline figures read all the same."""
    if not with_prediction:
        return DataDefinition(numerical_columns=features, categorical_columns=["target"])
    target, prediction = LABEL_COLUMNS
    return DataDefinition(
        numerical_columns=features,
        classification=[MulticlassClassification(target=target, prediction_labels=prediction)],
    )


def build_report(features: list[str], with_reference_quality: bool, drift_share: float) -> Report:
    metrics: list = [
        RowCount(),
        # The PCA columns only, not target/prediction, with the stack's one drift test.
        DataDriftPreset(columns=features, **drift.evidently_options(drift_share)),
        *score_metrics(),
    ]
    if with_reference_quality:
        # Evidently's per-class figures need the prediction column on both sides.
        metrics += [F1ByLabel(), PrecisionByLabel(), RecallByLabel()]
    return Report(metrics)


def run_batch(inputs: Inputs, batch: Batch, drift_share: float):
    """The snapshot of `batch`."""
    rows = batch.rows
    definition = data_definition(inputs.features, inputs.reference_has_prediction)
    current = Dataset.from_pandas(
        rows[[*inputs.features, *LABEL_COLUMNS]].copy(), data_definition=definition
    )
    reference = Dataset.from_pandas(inputs.reference, data_definition=definition)
    versions = sorted({str(v) for v in rows.get("model_version", pd.Series(dtype=str)).dropna()})
    metadata = {
        "batch": batch.key,
        "first_row": str(batch.start + 1),
        "last_row": str(batch.stop),
        "model_versions": ",".join(versions),
        "complete": str(batch.complete).lower(),
    }
    report = build_report(inputs.features, inputs.reference_has_prediction, drift_share)
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
