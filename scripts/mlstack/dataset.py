"""The data set the model learns from: scikit-learn's digits by default (it ships
inside scikit-learn, so nothing is downloaded), or a folder of the user's own
images with one sub-folder per label."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .labels import parse_label
from .preprocessing import DIGITS_FORMAT, ImageError, ImageFormat, bytes_to_format

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# A user's folder data set: images of any size are brought to a 16x16 grid.
FOLDER_FORMAT = ImageFormat(height=16, width=16, levels=255, block=2, passthrough=False)


class DatasetError(RuntimeError):
    """The data set cannot be loaded (missing or empty folder, a single label...)."""


@dataclass
class Dataset:
    name: str
    grids: np.ndarray  # (n, height, width), values in [0, 1], ink = 1
    labels: np.ndarray  # (n,) ints, or strings for a folder whose names are not numbers
    format: ImageFormat
    skipped: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> list:
        return sorted(set(self.labels.tolist()))


def load_digits_dataset() -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    grids = digits.images / 16.0
    return Dataset("digits", grids, digits.target.astype(int), DIGITS_FORMAT, skipped=[])


def load_folder_dataset(
    root: Path,
    fmt: ImageFormat = FOLDER_FORMAT,
    *,
    max_bytes: int = 10 * 1024 * 1024,
    max_pixels: int = 40_000_000,
    progress: bool = True,
) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"DATASET_DIR {root} is not a folder")
    label_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [
        (f, parse_label(d.name))
        for d in label_dirs
        for f in sorted(d.iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise DatasetError(
            f"no images in {root}: expected one sub-folder per label holding PNG/JPEG files"
        )
    grids, labels, skipped = [], [], []
    for i, (path, label) in enumerate(files, 1):
        try:
            grids.append(
                bytes_to_format(path.read_bytes(), fmt, max_bytes=max_bytes, max_pixels=max_pixels)
            )
            labels.append(label)
        except (ImageError, OSError) as exc:
            skipped.append(f"{path}: {exc}")
        if progress and (i % 500 == 0 or i == len(files)):
            log.info("read %d/%d images from %s", i, len(files), root)
    if skipped:
        log.warning("skipped %d unreadable file(s):\n  %s", len(skipped), "\n  ".join(skipped))
    if len(set(labels)) < 2:
        raise DatasetError(f"{root} holds fewer than two labels with readable images")
    kinds = {type(label) for label in labels}
    if len(kinds) > 1:  # mixed numeric and text folder names: keep them all as text
        labels = [str(label) for label in labels]
    return Dataset(root.name, np.stack(grids), np.array(labels), fmt, skipped)


def load_dataset(dataset_dir: Path | None = None, **limits: int) -> Dataset:
    """The user's folder if given, else the embedded digits."""
    if dataset_dir is None:
        return load_digits_dataset()
    return load_folder_dataset(Path(dataset_dir), **limits)
