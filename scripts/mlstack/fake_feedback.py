"""Fake feedback rows, for benchmarks, tests and a demo dashboard: reference vectors
with noise, in data/prod_data.csv's layout, as if that many feedbacks had come in.

The noise grows over the rows from none to `drift` standard deviations of each
column, so drift rises and quality falls along the file. The model in use predicts
the rows (`predicted=True`), or each prediction is its target (quicker, and needs no
model). The rows carry the metadata columns the serving API writes.

    python -m mlstack.fake_feedback --rows 1000   # writes DATA_DIR/prod_data.csv (not over one)
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from .prod_store import prod_columns
from .settings import StackSettings
from .stores import open_artifact_store, open_prod_store

START = datetime(2026, 1, 1, tzinfo=UTC)


def make_feedback(
    settings: StackSettings,
    rows: int,
    *,
    seed: int = 0,
    drift: float = 1.5,
    predicted: bool = True,
    start: datetime | None = None,
    step: timedelta = timedelta(minutes=1),
    labels: list | None = None,
    pool: np.ndarray | None = None,
) -> pd.DataFrame:
    """`rows` feedback rows; `labels` keeps only reference rows of those labels, `pool`
    only those rows of ref_data.csv (e.g. its training split, so that the reference
    hold-out still judges a model trained on them)."""
    ref = pd.read_csv(settings.ref_data_path)
    features = [c for c in ref.columns if c.startswith("PCA_")]
    if pool is not None:
        ref = ref.iloc[pool]
    if labels is not None:
        ref = ref[ref["target"].isin(labels)]
    rng = np.random.default_rng(seed)
    picked = ref.iloc[rng.integers(0, len(ref), rows)].reset_index(drop=True)
    scale = ref[features].std().to_numpy()
    growth = np.linspace(0.0, drift, rows)[:, None]
    vectors = picked[features].to_numpy() + rng.normal(size=(rows, len(features))) * scale * growth
    out = pd.DataFrame(vectors, columns=features)
    out["target"] = picked["target"].to_numpy()
    if predicted:
        artifacts = open_artifact_store(settings).load()
        out["prediction"] = artifacts.classifier.predict(vectors) if rows else []
        out["model_version"] = artifacts.version
    else:
        out["prediction"] = out["target"]
        out["model_version"] = 1
    start = start or START
    out["timestamp"] = [(start + i * step).isoformat(timespec="seconds") for i in range(rows)]
    out["prediction_id"] = [f"fake-{seed:04d}-{i:08d}" for i in range(rows)]
    return out[prod_columns(len(features))]


def write_feedback(frame: pd.DataFrame, path: Path, *, append: bool = False) -> None:
    """The rows as prod_data.csv (or after its last row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        with open(path, "a") as handle:
            frame.to_csv(handle, header=False, index=False)
    else:
        frame.to_csv(path, index=False)


def write_fake_feedback(settings: StackSettings, rows: int, **options) -> None:
    """`rows` rows of make_feedback (same options) as the whole of prod_data.csv."""
    write_feedback(make_feedback(settings, rows, **options), settings.prod_data_path)


def append_feedback(
    settings: StackSettings, vectors: np.ndarray, targets: list, predictions: list
) -> None:
    """Rows of given vectors, targets and predictions, appended the way the serving
    API appends them (through the store it uses: prod_data.csv, one locked write per row,
    or the database's table with DATABASE_URL)."""
    store = open_prod_store(settings, vectors.shape[1])
    for i, (vector, target, prediction) in enumerate(
        zip(vectors, targets, predictions, strict=True)
    ):
        store.append(
            vector,
            target,
            prediction,
            timestamp=(START + timedelta(minutes=i)).isoformat(timespec="seconds"),
            model_version=1,
            prediction_id=f"fake-{i:08d}",
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write fake feedback rows to prod_data.csv")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="overwrite prod_data.csv")
    args = parser.parse_args(argv)
    settings = StackSettings()
    if settings.prod_data_path.exists() and not args.force:
        print(f"{settings.prod_data_path} exists: pass --force to overwrite it", file=sys.stderr)
        return 1
    write_fake_feedback(settings, args.rows, seed=args.seed)
    print(f"wrote {args.rows} rows to {settings.prod_data_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
