"""The preprocessing's reference outputs: the 8x8 grids and the model's predictions
for the real-world-like sets, the data set's digits enlarged, the web app's canvas
size and the exported samples, recorded with the preprocessing as it was before it
was made faster (tests/scripts/test_preprocessing_reference.py holds today's code to
them).

    .venv/bin/python -m tests.scripts.preprocessing_reference   # about two minutes

writes tests/scripts/preprocessing_reference.npz. It was made by this module at the
commit that added it, with the artifacts of a fresh `bootstrap` (the shipped synthetic
rows); rerun it only to record a deliberate change of the preprocessing's output.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from mlstack.preprocessing import DIGITS_FORMAT, bytes_to_format
from PIL import Image, ImageDraw

REFERENCE = Path(__file__).with_name("preprocessing_reference.npz")
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
LIMITS = {"max_bytes": 20_000_000, "max_pixels": 40_000_000}
# name -> (per label, seed, font group) of scripts/make_realworld_set.py: the
# evaluation set of docs/model.md and the tuning set.
REALWORLD_SETS = {"realworld-eval": (120, 2024, "eval"), "realworld-tuning": (40, 100, "tuning")}


def _make_realworld_set():
    spec = importlib.util.spec_from_file_location(
        "make_realworld_set", SCRIPTS / "make_realworld_set.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def realworld_files(name: str, per_label: int | None = None) -> Iterator[tuple[str, int, bytes]]:
    """(file, label, bytes) of a real-world-like set, generated as make_realworld_set.py
    does; with `per_label`, its first images only (the same files: one draw after another
    from the seed)."""
    maker = _make_realworld_set()
    full, seed, fonts = REALWORLD_SETS[name]
    per_label = per_label or full
    with tempfile.TemporaryDirectory() as folder:
        rows = maker.generate(
            Path(folder), per_label, seed, maker.find_fonts([fonts]), progress=False
        )
        for row in rows:
            yield row["file"], int(row["label"]), (Path(folder) / row["file"]).read_bytes()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def enlarged_digits() -> Iterator[tuple[str, int, bytes]]:
    """The data set's last 200 digits, dark on white and enlarged to 96x96 (smoothly
    and blockily): the strokes touch the edges."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in range(len(digits.images) - 200, len(digits.images)):
        pixels = (255 - digits.images[i] / 16 * 237).astype(np.uint8)
        for resample in (Image.Resampling.BILINEAR, Image.Resampling.NEAREST):
            image = Image.fromarray(pixels).resize((96, 96), resample)
            yield f"{i}-{resample.name.lower()}", int(digits.target[i]), _png(image)


def canvas_drawings() -> Iterator[tuple[str, int, bytes]]:
    """Strokes as the web app's 280x280 canvas sends them (black on white, RGBA and
    RGB), with the stroke generator of the training rows."""
    from mlstack.augment import stroke_ink

    rng = np.random.default_rng(280)
    for n in range(200):
        label = n % 10
        ink = stroke_ink(label, rng)
        side = int(rng.integers(120, 240))
        width = min(270, round(ink.shape[1] * side / ink.shape[0]))
        pen = Image.fromarray((ink * 255).astype(np.uint8))
        pen = pen.resize((width, side), Image.Resampling.BILINEAR)
        canvas = Image.new("L", (280, 280), 0)
        canvas.paste(pen, (int(rng.integers(0, 281 - width)), int(rng.integers(0, 281 - side))))
        drawing = Image.eval(canvas, lambda v: 255 - v).convert("RGBA" if n % 2 else "RGB")
        yield f"canvas-{n:03d}", label, _png(drawing)
    image = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(image).line([(90, 60), (190, 60), (120, 230)], fill="black", width=18)
    yield "canvas-benchmark", 7, _png(image)


def samples(root: Path) -> Iterator[tuple[str, int, bytes]]:
    for path in sorted((root / "data" / "samples").glob("*.png")):
        yield path.name, int(path.name.split("_")[0]), path.read_bytes()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def record(files: Iterator[tuple[str, int, bytes]], artifacts) -> dict[str, np.ndarray]:
    names, labels, digests, cells = [], [], [], []
    for name, label, data in files:
        grid = bytes_to_format(data, DIGITS_FORMAT, **LIMITS)
        names.append(name)
        labels.append(label)
        digests.append(digest(data))
        cells.append(np.round(grid * DIGITS_FORMAT.levels).astype(np.uint8))
    grids = np.stack(cells) / DIGITS_FORMAT.levels
    predicted = artifacts.classifier.predict(artifacts.embedding.transform(grids))
    return {
        "names": np.array(names),
        "labels": np.array(labels),
        "digests": np.array(digests),
        "cells": np.stack(cells),
        "predicted": np.asarray(predicted, dtype=np.int64),
    }


def main() -> None:
    from mlstack.artifacts import ArtifactStore
    from mlstack.pipeline import bootstrap
    from mlstack.settings import PipelineSettings

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        bootstrap(PipelineSettings(project_root=root))
        artifacts = ArtifactStore(root / "artifacts").load()
        sets = {"samples": record(samples(root), artifacts)}
        sets["digits-enlarged"] = record(enlarged_digits(), artifacts)
        sets["canvas"] = record(canvas_drawings(), artifacts)
        for name in REALWORLD_SETS:
            sets[name] = record(realworld_files(name), artifacts)
    arrays = {
        f"{name}/{key}": value for name, fields in sets.items() for key, value in fields.items()
    }
    np.savez_compressed(REFERENCE, **arrays)
    for name, fields in sets.items():
        accuracy = float(np.mean(fields["predicted"] == fields["labels"]))
        print(f"{name}: {len(fields['names'])} images, accuracy {accuracy:.2%}")
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
