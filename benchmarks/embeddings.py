"""Each image embedding on folders of files, side by side: the gray grid (today's
for a folder, IMAGE_FEATURES=grid) and the photo features (IMAGE_FEATURES=photo, the
default for DATASET_DIR).

    python benchmarks/embeddings.py [--repeat 200]

The folders (mlstack.example_images; faces and textures need scikit-image, a
development dependency): scikit-learn's digits written as 8x8 PNG files, scikit-image's
lfw_subset (faces / non-faces), patches of its brick, grass and gravel pictures, and
600 generated coloured shapes on backgrounds of their own gray level. For each folder
and embedding: the first training as the API's first start runs it
(mlstack.pipeline.bootstrap: read the folder, fit the PCA and the classifier, export
samples), its held-out accuracy and macro F1 (HOLDOUT_FRACTION, never trained on),
the share of the held-out files /predict would refuse as blank, and the in-process
cost of one prediction as /predict pays it (file bytes -> decode -> features -> PCA ->
class scores), median over `--repeat` calls on the held-out files. The README's
"Your own images" keeps a run's table.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from markdown_table import markdown
from mlstack.dataset import IMAGE_SUFFIXES, PHOTO_FEATURES
from mlstack.example_images import write_faces, write_shapes, write_textures
from mlstack.pipeline import bootstrap
from mlstack.preprocessing import decode_image, grid_to_png
from mlstack.scoring import FastScorer
from mlstack.settings import PipelineSettings
from mlstack.training import holdout_split

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}


def write_digits(out: Path) -> Path:
    """scikit-learn's digits as out/<label>/NNNN.png, 8x8 gray files."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        (out / str(label)).mkdir(parents=True, exist_ok=True)
        (out / str(label) / f"{i:04d}.png").write_bytes(grid_to_png(image / 16.0))
    return out


def folder_files(folder: Path) -> list[Path]:
    """The files in the order mlstack.dataset reads them (row numbers of ref_data.csv)."""
    return [
        f
        for d in sorted(p for p in folder.iterdir() if p.is_dir())
        for f in sorted(d.iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]


def measure(name: str, folder: Path, features: str, root: Path, repeat: int) -> dict:
    settings = PipelineSettings(project_root=root, dataset_dir=folder, image_features=features)
    started = time.perf_counter()
    artifacts = bootstrap(settings)
    seconds = time.perf_counter() - started
    holdout = artifacts.manifest.metrics["holdout"]
    files = folder_files(folder)
    labels = np.array([f.parent.name for f in files])
    _, rows = holdout_split(labels, settings.holdout_fraction, settings.random_state)
    held_out = [files[i].read_bytes() for i in rows]
    embedding = artifacts.embedding
    scorer = FastScorer(artifacts.classifier)

    def predict(data: bytes) -> bool:
        features, blank = embedding.features(decode_image(data, **LIMITS))
        scorer.scores(embedding.transform(features[None])[0])
        return blank

    blank = sum(predict(data) for data in held_out)
    times = []
    for i in range(repeat):
        data = held_out[i % len(held_out)]
        start = time.perf_counter_ns()
        predict(data)
        times.append(time.perf_counter_ns() - start)
    return {
        "data set": name,
        "images": len(files),
        "classes": len(artifacts.manifest.classes),
        "IMAGE_FEATURES": features,
        "accuracy": holdout["accuracy"],
        "macro F1": holdout["f1_macro"],
        "refused as blank": f"{blank}/{len(held_out)}",
        "first training (s)": round(seconds, 1),
        "per prediction (ms)": round(statistics.median(times) / 1e6, 2),
    }


def features_cost(repeat: int) -> float:
    """Median ms of the photo features of one picture already at 64x64 (what the
    features themselves cost, decoding and resizing aside)."""
    rng = np.random.default_rng(0)
    pixels = rng.random((PHOTO_FEATURES.side, PHOTO_FEATURES.side, 3)).astype(np.float32)
    times = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        PHOTO_FEATURES.of_pixels(pixels)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # A folder the gray grid sees as blank gives a PCA of zeros: scikit-learn warns.
    warnings.simplefilter("ignore", RuntimeWarning)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        folders = {
            "digits (8x8 files)": write_digits(base / "digits"),
            "faces (lfw_subset)": write_faces(base / "faces"),
            "textures (brick, grass, gravel)": write_textures(base / "textures"),
            "coloured shapes, same gray": write_shapes(base / "shapes", 200),
        }
        for name, folder in folders.items():
            for features in ("grid", "photo"):
                root = base / f"{folder.name}-{features}"
                results.append(measure(name, folder, features, root, args.repeat))
                print(results[-1], flush=True)
    print(markdown(results))
    print(
        f"photo features of one 64x64 picture: {features_cost(args.repeat):.2f} ms (target <= 5 ms)"
    )


if __name__ == "__main__":
    main()
