"""Pure helpers of the pages: what the API's answers look like as labels and tables
(no Streamlit calls, so they are tested without a page)."""

from __future__ import annotations

import pandas as pd

from .client import BatchAnswer, ModelInfo, ModelVersion, Prediction
from .labels import Label, parse_label

DEFAULT_LABELS: list[Label] = list(range(10))


def label_options(model: ModelInfo | None, prediction: Prediction | None) -> list[Label]:
    """The labels a user can choose: the model's classes (GET /model), else the keys of
    the prediction's probabilities, else 0-9."""
    if model is not None and model.classes:
        return list(model.classes)
    if prediction is not None and prediction.probabilities:
        return [parse_label(key) for key in prediction.probabilities]
    return list(DEFAULT_LABELS)


def for_digits(model: ModelInfo | None) -> bool:
    """The page speaks of digits (and offers the canvas) for a model of the digits, and
    before the API has said what its model is."""
    return model is None or model.is_digits


def classifier_title(model: ModelInfo | None) -> str:
    """The page's title: "Digit classifier" for the digits (and when the API is not
    known yet), else the data set's name: "Wine colour classifier" for wine_colour.csv."""
    if for_digits(model):
        return "Digit classifier"
    assert model is not None  # for_digits says so
    if model.dataset is None:  # a table from an API that does not name it
        return "Table classifier"
    words = " ".join(model.dataset.replace("_", " ").replace("-", " ").split())
    return f"{words[:1].upper()}{words[1:]} classifier"


def page_icon(model: ModelInfo | None) -> str:
    if model is not None and model.is_table:
        return "📋"
    return "🔢" if for_digits(model) else "🖼️"


def probability_frame(prediction: Prediction, order: list[Label]) -> pd.DataFrame:
    """Probabilities in the order of the labels (keys are strings in JSON)."""
    known = [str(label) for label in order if str(label) in prediction.probabilities]
    rest = [k for k in prediction.probabilities if k not in known]
    keys = known + rest
    return pd.DataFrame(
        {"label": keys, "probability": [prediction.probabilities[k] for k in keys]}
    ).set_index("label")


def when(version: ModelVersion) -> str:
    """A version's training time to the second, as the page shows it."""
    return version.trained_at.replace("T", " ")[:19]


def versions_frame(versions: list[ModelVersion]) -> pd.DataFrame:
    """GET /model/versions as a table, one row a version, oldest first."""
    return pd.DataFrame(
        {
            "version": [v.version for v in versions],
            "in use": [v.active for v in versions],
            "trained at": [when(v) for v in versions],
            "reason": [v.reason for v in versions],
            "rows": [v.rows.get("total") for v in versions],
            "feedback rows": [v.rows.get("prod") for v in versions],
            "reference F1": [v.figure("holdout", "f1_macro") for v in versions],
            "reference balanced accuracy": [
                v.figure("holdout", "balanced_accuracy") for v in versions
            ],
            "feedback F1": [v.figure("feedback", "f1_macro") for v in versions],
            "status": [v.status for v in versions],
            "gate": [v.gate_reason for v in versions],
        }
    )


def f1_frame(versions: list[ModelVersion]) -> pd.DataFrame:
    """Reference and feedback F1 over versions, for the line chart (no figure: NaN)."""
    return pd.DataFrame(
        {
            "reference F1": [v.figure("holdout", "f1_macro") for v in versions],
            "feedback F1": [v.figure("feedback", "f1_macro") for v in versions],
        },
        index=pd.Index([v.version for v in versions], name="version"),
        dtype=float,
    )


def rollback_choices(versions: list[ModelVersion]) -> list[int]:
    """The versions the API can serve again: not the one in use, never a rejected one."""
    return [v.version for v in versions if not v.active and not v.rejected]


def batch_groups(sizes: list[int], max_images: int, max_bytes: int) -> list[list[int]]:
    """The indices of the files, in order, cut into requests of at most `max_images`
    files and `max_bytes` in all (a file over `max_bytes` goes alone: the API says why)."""
    groups: list[list[int]] = []
    total = 0
    for index, size in enumerate(sizes):
        if not groups or len(groups[-1]) >= max_images or total + size > max_bytes:
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += size
    return groups


def batch_frame(names: list[str], answers: list[BatchAnswer]) -> pd.DataFrame:
    """The Batch page's table: one row a file, its prediction and confidence (the
    highest probability), or its error."""
    predictions = [a.prediction for a in answers]
    return pd.DataFrame(
        {
            "file": names,
            "prediction": [str(p.prediction) if p else "" for p in predictions],
            "confidence": [max(p.probabilities.values()) if p else None for p in predictions],
            "error": [a.error or "" for a in answers],
        }
    )
