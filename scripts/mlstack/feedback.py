"""Production feedback as retraining sees it: which rows train, which judge, which
are contested and which are held back.

- Hold-out: the rows whose prediction_id hashes into GATE_FEEDBACK_SHARE, and the
  images of the reference hold-out sent back as feedback (the web app's samples are
  such images), are never trained on: they judge candidates (mlstack.gate).
- Contested: a row whose true label differs from the prediction the user was shown.
  A real correction looks like that, so contested rows are trained on, except
- in a burst: when more than CONTESTED_BURST_SHARE of the rows answered by one model
  version are contested (at least GATE_MIN_FEEDBACK_ROWS of them), that version's
  contested rows are held back from training. A served model right nine times in
  ten does not become wrong on most of its answers at once; a mistake or an attack
  does. The rows stay stored, counted in the manifest and shown in the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .embedding import feature_columns
from .gate import in_feedback_holdout
from .labels import parse_label
from .prod_store import ProdDataStore


@dataclass
class FeedbackRows:
    vectors: np.ndarray
    targets: np.ndarray
    predictions: np.ndarray
    versions: np.ndarray  # the model version that answered each prediction
    keys: np.ndarray  # prediction_id, or the line number for a row without one
    seen: int  # rows the file held when read

    def __len__(self) -> int:
        return len(self.targets)


def read_feedback(source: Path | Any, n_components: int, limit: int) -> FeedbackRows:
    """The newest `limit` rows of prod_data.csv, or of `source` when it is a store
    (mlstack.stores.open_prod_store); all of them are counted in `seen`."""
    columns = [*feature_columns(n_components), "target"]
    store = ProdDataStore(source, n_components) if isinstance(source, str | Path) else source
    frame = store.read([*columns, "prediction", "model_version", "prediction_id"])
    frame = frame.dropna(subset=columns)
    seen = len(frame)
    frame = frame.tail(limit) if limit > 0 else frame.iloc[:0]
    ids = frame["prediction_id"].astype("string").fillna("")
    keys = np.where(ids == "", [f"row-{i}" for i in frame.index], ids).astype(object)
    return FeedbackRows(
        vectors=frame[columns[:-1]].to_numpy(dtype=np.float64),
        targets=frame["target"].to_numpy(),
        predictions=frame["prediction"].to_numpy(),
        versions=pd.to_numeric(frame["model_version"], errors="coerce").fillna(0).to_numpy(int),
        keys=keys,
        seen=seen,
    )


def same_rows(vectors: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which of `vectors` equal a row of `others` (to 6 decimals: the same image file
    embeds to the same vector within 1e-12)."""
    seen = {row.tobytes() for row in np.round(others, 6)}
    return np.array([row.tobytes() in seen for row in np.round(vectors, 6)], dtype=bool)


def holdout_mask(rows: FeedbackRows, share: float, reference_holdout: np.ndarray) -> np.ndarray:
    return in_feedback_holdout(rows.keys, share) | same_rows(rows.vectors, reference_holdout)


def contested_mask(rows: FeedbackRows) -> np.ndarray:
    pairs = zip(rows.targets, rows.predictions, strict=True)
    # pandas reads 7 back as 7, 7.0 (a column with a gap) or "7": all are the label 7.
    return np.array([parse_label(t) != parse_label(p) for t, p in pairs], dtype=bool)


def burst_mask(
    contested: np.ndarray, versions: np.ndarray, share: float, min_rows: int
) -> np.ndarray:
    """The contested rows of every model version whose answers were contested more
    than `share` of the time, over at least `min_rows` rows."""
    out = np.zeros(len(contested), dtype=bool)
    for version in np.unique(versions):
        group = versions == version
        if group.sum() >= min_rows and contested[group].mean() > share:
            out |= group & contested
    return out
