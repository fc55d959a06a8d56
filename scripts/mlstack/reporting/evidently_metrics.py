"""The headline classification figures of each snapshot, as Evidently metrics.

Multiclass guard: Evidently 0.7's own F1Score/Precision/Recall/Accuracy switch to
binary maths when a batch holds exactly two labels (and fail when these are not 0 and
1). The headline figures are therefore mlstack.quality's, which always average over
the labels present in the batch, as scikit-learn's `average="macro"` does; the
per-class figures and the confusion matrix are Evidently's own.

One metric class and one calculation serve every figure; SCORES names a metric type
per figure (the dashboard's panels and stored snapshots refer to these names).

The retraining loop's figures follow the same pattern: FLAGS counts the contested and
burst rows of a feedback batch (count and share, as Evidently's CountValue), and
GATE_FIGURES reads one retraining's gate decision from a one-row data set.

The embedding's drift (EmbeddingDrift) is Evidently's DataDriftPreset, its metrics and
results unchanged (DriftedColumnsCount and one ValueDrift per PCA column), shown as
the preset's counters and table built from those results. Evidently itself would draw
two plotly figures per column for the ValueDrift results (stored, never shown: the
preset shows its own table instead), run every column's test twice more (for the
count, for the table) and draw two more figures per column for the table: three
quarters of a snapshot's time, and 1.9 MB of its 2 MB.
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from evidently import Dataset
from evidently.core.metric_types import (
    CountCalculation,
    CountMetric,
    CountValue,
    Metric,
    SingleValue,
    SingleValueCalculation,
    SingleValueMetric,
    get_default_render,
    get_default_render_ref,
)
from evidently.core.report import Context, _default_input_data_generator
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.metrics import ClassificationConfusionMatrix
from evidently.legacy.model.widget import BaseWidgetInfo
from evidently.legacy.renderers.html_widgets import (
    ColumnDefinition,
    CounterData,
    RichTableDataRow,
    RowDetails,
    WidgetSize,
    counter,
    header_text,
    rich_table_data,
)
from evidently.metrics import ValueDrift
from evidently.metrics.column_statistics import DriftedColumnCalculation, ValueDriftCalculation
from evidently.presets import DataDriftPreset

from ..prod_store import LABEL_COLUMNS
from ..quality import classification_quality

# metric type: (title shown, figure of mlstack.quality.classification_quality)
SCORES: dict[str, tuple[str, str]] = {
    "MulticlassF1": ("F1 (macro)", "f1"),
    "BalancedAccuracy": ("Balanced accuracy", "balanced_accuracy"),
    "MulticlassPrecision": ("Precision (macro)", "precision"),
    "MulticlassRecall": ("Recall (macro)", "recall"),
    "MulticlassAccuracy": ("Accuracy", "accuracy"),
}
WITH_CONFUSION_MATRIX = "MulticlassF1"  # its widget carries Evidently's confusion matrix


class MulticlassScore(SingleValueMetric):
    """One figure of mlstack.quality over the rows' target and prediction columns."""

    title: ClassVar[str] = ""
    figure: ClassVar[str] = ""
    confusion_matrix: ClassVar[bool] = False


# Dataset -> its figures: the five metrics of a snapshot read one computation, and the
# reference's (the same Dataset for every snapshot of a run) is computed once per run.
_FIGURES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _figure(dataset: Dataset | None, figure: str) -> float | None:
    if dataset is None:
        return None
    if dataset not in _FIGURES:
        frame = dataset.as_dataframe()
        if not set(LABEL_COLUMNS) <= set(frame.columns):
            _FIGURES[dataset] = {}  # the reference without a model's predictions
        else:
            rows = frame[list(LABEL_COLUMNS)].dropna()
            _FIGURES[dataset] = classification_quality(*(rows[c] for c in LABEL_COLUMNS))
    return _FIGURES[dataset].get(figure)


class MulticlassScoreCalculation(SingleValueCalculation[MulticlassScore]):
    def calculate(self, context: Context, current_data, reference_data) -> tuple[SingleValue, Any]:
        metric = self.metric
        value = _figure(current_data, metric.figure)
        if value is None:
            raise ValueError(f"{metric.title}: the current data has no target/prediction rows")
        ref_value = _figure(reference_data, metric.figure)
        cur = self.result(value)
        ref = None if ref_value is None else self.result(ref_value)
        cur.widget = (
            get_default_render(metric.title, cur)
            if ref is None
            else get_default_render_ref(metric.title, cur, ref)
        )
        if metric.confusion_matrix and context.data_definition.get_classification("default"):
            # Evidently's confusion matrix: correct for any number of labels.
            _, widgets = context.get_legacy_metric(
                ClassificationConfusionMatrix(), _default_input_data_generator, "default"
            )
            cur.widget += widgets
        return cur, ref

    def display_name(self) -> str:
        return self.metric.title


def _metric_class(name: str, title: str, figure: str) -> type[MulticlassScore]:
    attributes = {"__module__": __name__, "title": title, "figure": figure}
    attributes["confusion_matrix"] = name == WITH_CONFUSION_MATRIX
    return type(name, (MulticlassScore,), attributes)


METRICS: dict[str, type[MulticlassScore]] = {
    name: _metric_class(name, title, figure) for name, (title, figure) in SCORES.items()
}


def metric_type(name: str) -> str:
    """The type under which Evidently stores the metric `name` (for the panels)."""
    return f"evidently:metric_v2:{name}"


def score_metrics() -> list[MulticlassScore]:
    return [cls() for cls in METRICS.values()]


# -- the retraining loop -------------------------------------------------------------
# Feedback flags: a 0/1 column per flag, added to each batch's current rows by
# mlstack.reporting.report (mlstack.feedback's own masks): metric type -> (title, column)
FLAGS: dict[str, tuple[str, str]] = {
    "ContestedRows": ("Contested rows (target differs from the prediction shown)", "contested"),
    "BurstRows": ("Rows in a burst (held back from training)", "burst"),
}
# Gate decisions: one row per retraining, one column per figure: metric type -> (title, column)
GATE_FIGURES: dict[str, tuple[str, str]] = {
    "GateAccepted": ("Candidate accepted (1) or not (0)", "accepted"),
    "GateRejected": ("Candidate rejected (1) or not (0)", "rejected"),
    "CandidateReferenceF1": ("Candidate F1 (macro), reference hold-out", "candidate_f1"),
    "ChampionReferenceF1": ("Champion F1 (macro), reference hold-out", "champion_f1"),
}


class FeedbackFlag(CountMetric):
    """How many of the batch's rows carry a flag, and their share of the batch."""

    title: ClassVar[str] = ""
    column: ClassVar[str] = ""


class FeedbackFlagCalculation(CountCalculation[FeedbackFlag]):
    def calculate(self, context: Context, current_data, reference_data) -> tuple[CountValue, None]:
        frame = current_data.as_dataframe()
        column = self.metric.column
        if column not in frame.columns:
            raise ValueError(f"{self.metric.title}: the current data has no {column} column")
        count = int(frame[column].astype(bool).sum())
        result = self.result(count, count / len(frame) if len(frame) else 0.0)
        result.widget = [
            counter(
                title=self.metric.title,
                size=WidgetSize.FULL,
                counters=[CounterData(label="", value=f"{count} ({result.share.value:.1%})")],
            )
        ]
        return result, None  # the reference has no feedback flags

    def display_name(self) -> str:
        return self.metric.title


class GateFigure(SingleValueMetric):
    """One figure of a retraining's gate decision, read from its one-row data set."""

    title: ClassVar[str] = ""
    column: ClassVar[str] = ""


class GateFigureCalculation(SingleValueCalculation[GateFigure]):
    def calculate(self, context: Context, current_data, reference_data) -> tuple[SingleValue, None]:
        frame = current_data.as_dataframe()
        column = self.metric.column
        if column not in frame.columns or len(frame) != 1 or pd.isna(frame[column].iloc[0]):
            raise ValueError(f"{self.metric.title}: not in the gate decision")
        result = self.result(float(frame[column].iloc[0]))
        result.widget = get_default_render(self.metric.title, result)
        return result, None

    def display_name(self) -> str:
        return self.metric.title


def _column_class(base: type, name: str, title: str, column: str) -> type:
    return type(name, (base,), {"__module__": __name__, "title": title, "column": column})


FLAG_METRICS: dict[str, type[FeedbackFlag]] = {
    name: _column_class(FeedbackFlag, name, title, column)
    for name, (title, column) in FLAGS.items()
}
GATE_METRICS: dict[str, type[GateFigure]] = {
    name: _column_class(GateFigure, name, title, column)
    for name, (title, column) in GATE_FIGURES.items()
}


def flag_metrics() -> list[FeedbackFlag]:
    return [cls() for cls in FLAG_METRICS.values()]


def gate_metrics(columns: set[str]) -> list[GateFigure]:
    """The gate figures whose column the decision holds (no champion: no champion F1)."""
    return [cls() for cls in GATE_METRICS.values() if cls.column in columns]


# -- the embedding's drift ----------------------------------------------------------
class EmbeddingDrift(DataDriftPreset):
    """DataDriftPreset over the embedding columns (the same metrics and results), shown
    as Evidently's dataset drift counters and one table of the columns' tests, without
    the per-column figures of the preset's table (see the module's docstring). Its
    columns take the stack's one test (mlstack.drift: Kolmogorov-Smirnov, a p-value
    compared with its threshold), which is what the count and the table read."""

    def column_tests(self, context: Context) -> list[tuple[str, float, float]]:
        """(column, p-value, threshold) of each ValueDrift of the preset."""
        drift = [m for m in self.metrics(context) if isinstance(m, ValueDrift)]
        return [
            (m.column, float(context.calculate_metric(m.to_calculation()).value), m.threshold)
            for m in drift
        ]

    def render(self, context: Context, child_widgets=None) -> list[BaseWidgetInfo]:
        tests = self.column_tests(context)
        drifted = sum(_drifted(p, threshold) for _, p, threshold in tests)
        share = drifted / len(tests) if tests else 0.0
        detected = "detected" if share >= self.drift_share else "NOT detected"
        # the counters and the table of Evidently's preset, without its per-column figures
        rows = [
            RichTableDataRow(
                details=RowDetails(),
                fields={
                    "column_name": column,
                    "column_type": "num",
                    "stattest_name": "K-S p_value",
                    "data_drift": "Detected" if _drifted(p, threshold) else "Not Detected",
                    "drift_score": round(p, 6),
                },
            )
            for column, p, threshold in sorted(tests, key=lambda test: test[1])
        ]
        return [
            counter(
                title="",
                counters=[
                    CounterData(
                        f"Dataset Drift is {detected}. "
                        f"Dataset drift detection threshold is {self.drift_share}",
                        "Dataset Drift",
                    )
                ],
            ),
            counter(
                title="",
                counters=[
                    CounterData.int("Columns", len(tests)),
                    CounterData.int("Drifted Columns", drifted),
                    CounterData.float("Share of Drifted Columns", share, 3),
                ],
            ),
            header_text(label="Data Drift Summary"),
            rich_table_data(
                title=f"Drift is detected for {round(share * 100, 3)}% of columns "
                f"({drifted} out of {len(tests)}).",
                columns=[
                    ColumnDefinition("Column", "column_name"),
                    ColumnDefinition("Type", "column_type"),
                    ColumnDefinition("Data Drift", "data_drift"),
                    ColumnDefinition("Stat Test", "stattest_name"),
                    ColumnDefinition("Drift Score", "drift_score"),
                ],
                data=rows,
            ),
        ]


def _drifted(p_value: float, threshold: float) -> bool:
    return p_value <= threshold  # Evidently's K-S rule (its ks_stattest)


def _embedding_drift(context: Context, metric: Metric) -> EmbeddingDrift | None:
    """The EmbeddingDrift of the report that holds `metric`, if any."""
    for item in context.configuration.items():
        if isinstance(item, EmbeddingDrift) and metric in item.metrics(context):
            return item
    return None


# Defining these calculations makes them ValueDrift's and DriftedColumnsCount's (Evidently
# binds a metric type to its newest calculation class): the same results, less work for
# the metrics of an EmbeddingDrift; every other such metric is computed as Evidently does.
class ValueDriftOfEmbedding(ValueDriftCalculation):
    """Evidently's ValueDrift; for a column of an EmbeddingDrift, Evidently's test alone
    (its registered K-S on the same finite values), with no widget: Evidently's own
    calculation also bins both sides and the current rows over their index for two
    figures, which the preset never shows (its table shows the column instead). A
    table's own columns (top-level ValueDrift metrics of the report) keep their
    figures."""

    def calculate(self, context: Context, current_data, reference_data):
        shown = _embedding_drift(context, self.metric) is None
        if shown or reference_data is None or context.configuration.include_tests:
            return super().calculate(context, current_data, reference_data)
        column = self.metric.column
        kind = current_data.column(column).type
        ref, cur = (_finite(side.as_dataframe()[column]) for side in (reference_data, current_data))
        test = get_stattest(ref, cur, kind, self.metric.method)
        result = self.result(test(ref, cur, kind, self.metric.threshold).drift_score)
        result.widget = []
        return result


def _finite(values: pd.Series) -> pd.Series:
    """The values Evidently's get_one_column_drift tests: infinities and gaps left out."""
    return values.replace([np.inf, -np.inf], np.nan).dropna()


class DriftedColumnsFromValueDrift(DriftedColumnCalculation):
    """Evidently's DriftedColumnsCount; for an EmbeddingDrift, counted from the
    preset's ValueDrift results (the same test on the same columns) rather than by
    Evidently's legacy DatasetDriftMetric, which runs every column's test again and
    prepares its plots."""

    def calculate(self, context: Context, current_data, reference_data):
        preset = _embedding_drift(context, self.metric)
        if preset is None:
            return super().calculate(context, current_data, reference_data)
        tests = preset.column_tests(context)
        drifted = sum(_drifted(p, threshold) for _, p, threshold in tests)
        result = self.result(drifted, drifted / len(tests) if tests else 0.0)
        result.widget = get_default_render(self.display_name(), result)
        return result, None
