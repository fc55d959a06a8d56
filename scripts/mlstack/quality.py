"""Classification quality: the one set of figures used by training's hold-out
metrics, the Evidently report and the Prometheus exporter.

Multiclass maths always: every figure averages over the labels present in the rows
(in the targets or the predictions), as scikit-learn's `average="macro"` does, even
when the rows hold two labels only. A label predicted but never true (or true but
never predicted) counts 0 for its precision (or recall) rather than raising a
warning. Balanced accuracy is the mean recall over the true labels.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm

FIGURES = ("f1", "precision", "recall", "balanced_accuracy", "accuracy")


def _labels(values) -> np.ndarray:
    """Labels as text, so that 7, 7.0 (a CSV column with a gap) and "7" compare equal."""
    array = np.asarray(values)
    if array.dtype.kind == "f" and np.all(np.mod(array, 1) == 0):
        array = array.astype(np.int64)
    return array.astype(str)


def classification_quality(target, prediction) -> dict[str, float]:
    """The FIGURES of `prediction` against `target`; {} when there are no rows."""
    y_true, y_pred = _labels(target), _labels(prediction)
    if len(y_true) == 0:
        return {}
    macro = {"labels": np.union1d(y_true, y_pred), "average": "macro", "zero_division": 0}
    with warnings.catch_warnings():
        # balanced accuracy warns when a predicted label is never true; it is still right
        warnings.simplefilter("ignore", UserWarning)
        balanced = skm.balanced_accuracy_score(y_true, y_pred)
    return {
        "f1": float(skm.f1_score(y_true, y_pred, **macro)),
        "precision": float(skm.precision_score(y_true, y_pred, **macro)),
        "recall": float(skm.recall_score(y_true, y_pred, **macro)),
        "balanced_accuracy": float(balanced),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
    }
