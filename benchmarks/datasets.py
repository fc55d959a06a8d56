"""Each data set the stack can serve out of the box, side by side: the digits (the
default, images) and the example tables (DATASET_CSV; mlstack.examples).

    python benchmarks/datasets.py [--repeat 2000]

For each: the first training as the API's first start runs it (mlstack.pipeline.
bootstrap on an empty project), its held-out accuracy and macro F1 (the stratified
hold-out of HOLDOUT_FRACTION, never trained on), the training time, and the
in-process cost of one prediction as /predict pays it, split in two: the input to
its vector (digits: decode + preprocess + PCA of an exported 8x8 sample; a table:
schema check + imputation/scaling/one-hot + PCA of a held-out row) and the vector to
its class scores (scaler + classifier, mlstack.scoring.FastScorer). Median of
`--repeat` calls. docs/tables.md keeps a run's table.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from markdown_table import markdown
from mlstack.examples import TABLES, write_table
from mlstack.pipeline import bootstrap
from mlstack.preprocessing import bytes_to_format
from mlstack.scoring import FastScorer
from mlstack.settings import PipelineSettings


def median_us(call: Callable[[], object], repeat: int) -> float:
    for _ in range(min(50, repeat)):  # warm-up
        call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def measure(name: str, settings: PipelineSettings, repeat: int) -> dict[str, object]:
    started = time.perf_counter()
    artifacts = bootstrap(settings)  # builds ref_data.csv, trains, exports samples
    seconds = time.perf_counter() - started
    manifest = artifacts.manifest
    embedding = artifacts.embedding
    scorer = FastScorer(artifacts.classifier)
    if settings.is_table:
        samples = pd.read_csv(settings.samples_dir / "samples.csv")
        first = samples.drop(columns=["ref_row", settings.target_column]).iloc[0]
        row = {
            k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v)
            for k, v in first.items()
        }
        embed = lambda: embedding.embed_row(row)[0]  # noqa: E731
        rows = len(pd.read_csv(settings.dataset_csv))
        columns = len(manifest.extra["schema"]["columns"])
    else:
        data = sorted(settings.samples_dir.glob("*.png"))[0].read_bytes()
        fmt = embedding.format
        embed = lambda: embedding.transform(  # noqa: E731
            bytes_to_format(data, fmt, max_bytes=1 << 20, max_pixels=1 << 22)[None]
        )[0]
        rows = manifest.rows["ref"] + manifest.metrics["holdout"]["rows"]
        columns = 64
    vector = embed()
    holdout = manifest.metrics["holdout"]
    return {
        "data set": name,
        "rows": rows,
        "input columns": columns,
        "PCA": manifest.n_components,
        "classes": len(manifest.classes),
        "held-out rows": holdout["rows"],
        "accuracy": holdout["accuracy"],
        "macro F1": holdout["f1_macro"],
        "first training (s)": round(seconds, 2),
        "fit (s)": manifest.metrics["seconds"],
        "input -> vector (µs)": round(median_us(embed, repeat)),
        "vector -> scores (µs)": round(median_us(lambda: scorer.one(vector), repeat)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        results.append(
            measure(
                "digits (images, default)",
                PipelineSettings(project_root=base / "digits"),
                args.repeat,
            )
        )
        for name in sorted(TABLES):
            csv = write_table(name, base / "examples")
            settings = PipelineSettings(project_root=base / name, dataset_csv=csv)
            results.append(measure(f"{name} (table)", settings, args.repeat))
    print(markdown(results))


if __name__ == "__main__":
    main()
