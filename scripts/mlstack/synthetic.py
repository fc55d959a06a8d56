"""Plausible production rows for benchmarks and tests: reference vectors plus noise,
written in prod_data.csv's own layout (as if that many feedbacks had come in)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .prod_store import prod_columns
from .settings import PipelineSettings


def write_synthetic_prod(
    settings: PipelineSettings, rows: int, *, noise: float = 0.3, seed: int = 0
) -> None:
    ref = pd.read_csv(settings.ref_data_path)
    n = len(ref.columns) - 1
    rng = np.random.default_rng(seed)
    picked = ref.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    frame = picked.iloc[:, :n] + rng.normal(0, noise, (rows, n))
    frame["target"] = picked["target"]
    frame["prediction"] = picked["target"]
    frame["timestamp"] = "2026-01-01T00:00:00+00:00"
    frame["model_version"] = 1
    frame["prediction_id"] = [f"synthetic{i}" for i in range(rows)]
    frame.columns = prod_columns(n)
    settings.prod_data_path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(settings.prod_data_path, index=False)
