"""Feedback rows made from the reference, for the benchmark, the tests and a demo dashboard.

Rows are reference vectors with noise that grows over time (so drift and quality move),
the model in use predicts them, and they carry the metadata columns the serving API
writes (timestamp, model_version, prediction_id), in data/prod_data.csv's layout.

    python sample_data.py --rows 1000      # writes DATA_DIR/prod_data.csv (refuses to overwrite)
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from mlstack.artifacts import ArtifactStore
from mlstack.prod_store import prod_columns
from mlstack.settings import PipelineSettings


def make_prod_rows(
    pipeline: PipelineSettings,
    rows: int,
    *,
    seed: int = 0,
    drift: float = 1.5,
    start: datetime | None = None,
    step: timedelta = timedelta(minutes=1),
    labels: list | None = None,
) -> pd.DataFrame:
    """`rows` feedback rows; `labels` keeps only reference rows of those labels."""
    ref = pd.read_csv(pipeline.ref_data_path)
    features = [c for c in ref.columns if c.startswith("PCA_")]
    if labels is not None:
        ref = ref[ref["target"].isin(labels)]
    artifacts = ArtifactStore(pipeline.artifacts_dir).load()
    rng = np.random.default_rng(seed)
    picked = ref.iloc[rng.integers(0, len(ref), rows)].reset_index(drop=True)
    scale = ref[features].std().to_numpy()
    # Noise from none to `drift` standard deviations over the rows: drift rises, quality falls.
    growth = np.linspace(0.0, drift, rows)[:, None]
    vectors = picked[features].to_numpy() + rng.normal(size=(rows, len(features))) * scale * growth
    out = pd.DataFrame(vectors, columns=features)
    out["target"] = picked["target"].to_numpy()
    out["prediction"] = artifacts.classifier.predict(vectors) if rows else []
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    out["timestamp"] = [(start + i * step).isoformat(timespec="seconds") for i in range(rows)]
    out["model_version"] = artifacts.version
    out["prediction_id"] = [f"{seed:04d}-{i:08d}" for i in range(rows)]
    return out[prod_columns(len(features))]


def write_prod_rows(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write generated feedback rows to prod_data.csv")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="overwrite prod_data.csv")
    args = parser.parse_args(argv)
    pipeline = PipelineSettings()
    if pipeline.prod_data_path.exists() and not args.force:
        print(f"{pipeline.prod_data_path} exists: pass --force to overwrite it", file=sys.stderr)
        return 1
    write_prod_rows(make_prod_rows(pipeline, args.rows, seed=args.seed), pipeline.prod_data_path)
    print(f"wrote {args.rows} rows to {pipeline.prod_data_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
