"""The data set the model learns from: scikit-learn's digits by default (it ships
inside scikit-learn, so nothing is downloaded), or a folder of the user's own
images with one sub-folder per label, brought to what the embedding's PCA takes:
photo features (mlstack.photos) or a gray grid (IMAGE_FEATURES)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .labels import parse_label
from .onnx_features import OnnxFeatures
from .photos import PhotoFeatures
from .preprocessing import DIGITS_FORMAT, ImageError, ImageFormat, decode_image, to_format

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# A user's folder data set: images of any size are brought to a 16x16 grid.
FOLDER_FORMAT = ImageFormat(height=16, width=16, levels=255, block=2, passthrough=False)
# ...or, by default, described by their colour, shape and texture.
PHOTO_FEATURES = PhotoFeatures()


class DatasetError(RuntimeError):
    """The data set cannot be loaded (missing or empty folder, a single label...)."""


@dataclass
class Dataset:
    name: str
    # What the embedding's PCA takes: (n, height, width) grids, values in [0, 1],
    # ink = 1; or (n, features) when `photo` is set.
    inputs: np.ndarray
    labels: np.ndarray  # (n,) ints, or strings for a folder whose names are not numbers
    format: ImageFormat
    skipped: list[str]
    photo: PhotoFeatures | OnnxFeatures | None = None
    files: list[Path] = field(default_factory=list)  # a folder's image files, row by row

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
    photo: PhotoFeatures | OnnxFeatures | None = None,
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
    inputs, labels, read, skipped = [], [], [], []
    for i, (path, label) in enumerate(files, 1):
        try:
            data = path.read_bytes()
            image = decode_image(
                data, max_bytes=max_bytes, max_pixels=max_pixels, grayscale=photo is None
            )
            inputs.append(photo.of_image(image)[0] if photo else to_format(image, fmt))
            labels.append(label)
            read.append(path)
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
    return Dataset(root.name, np.stack(inputs), np.array(labels), fmt, skipped, photo, read)


def load_dataset(
    dataset_dir: Path | None = None,
    *,
    image_features: str = "photo",
    image_model: Path | None = None,
    **limits: int,
) -> Dataset:
    """The user's folder if given, else the embedded digits. For a folder, an ONNX
    `image_model` (IMAGE_MODEL) gives the features if set; else `image_features`
    (IMAGE_FEATURES): "photo" describes its images by colour, shape and texture,
    "grid" brings them to a 16x16 gray grid of their strokes."""
    if dataset_dir is None:
        return load_digits_dataset()
    if image_model is not None:
        photo = OnnxFeatures.load(image_model)
    else:
        photo = PHOTO_FEATURES if image_features == "photo" else None
    return load_folder_dataset(Path(dataset_dir), photo=photo, **limits)
