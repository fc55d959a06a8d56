"""The headline classification figures of each snapshot, as Evidently metrics.

Multiclass guard: Evidently 0.7's own F1Score/Precision/Recall/Accuracy switch to
binary maths when a batch holds exactly two labels (and fail when these are not 0 and
1). The headline figures are therefore mlstack.quality's, which always average over
the labels present in the batch, as scikit-learn's `average="macro"` does; the
per-class figures and the confusion matrix are Evidently's own.

One metric class and one calculation serve every figure; SCORES names a metric type
per figure (the dashboard's panels and stored snapshots refer to these names).
"""

from __future__ import annotations

from typing import Any, ClassVar

from evidently import Dataset
from evidently.core.metric_types import (
    SingleValue,
    SingleValueCalculation,
    SingleValueMetric,
    get_default_render,
    get_default_render_ref,
)
from evidently.core.report import Context, _default_input_data_generator
from evidently.legacy.metrics import ClassificationConfusionMatrix

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


def _figure(dataset: Dataset | None, figure: str) -> float | None:
    if dataset is None:
        return None
    frame = dataset.as_dataframe()
    if not set(LABEL_COLUMNS) <= set(frame.columns):
        return None  # the reference without a model's predictions
    rows = frame[list(LABEL_COLUMNS)].dropna()
    return classification_quality(*(rows[c] for c in LABEL_COLUMNS)).get(figure)


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
