"""Example image folders (one sub-folder per label) a user can point DATASET_DIR at;
nothing is downloaded:

    python scripts/make_example_images.py --out data/examples shapes
    DATASET_DIR=data/examples/shapes python scripts/bootstrap.py

- shapes: circles, squares and triangles in random colours, sizes, positions and
  angles on noisy coloured backgrounds of the same gray level as the shape (a gray
  picture shows almost nothing), PNG and JPEG; made here.
- faces: scikit-image's `lfw_subset`, 100 faces and 100 non-faces of 25x25 pixels.
- textures: patches cut from scikit-image's brick, grass and gravel pictures.

faces and textures need scikit-image, a development dependency (requirements-dev.txt)
that the service images leave out.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
_LUMA = np.array([0.299, 0.587, 0.114])


def same_gray_colours(rng: np.random.Generator, contrast: float = 0.3) -> tuple[np.ndarray, ...]:
    """(background, shape) RGB colours in [0, 1] with the same gray level (luma) and
    at least `contrast` apart: only their colour tells them apart."""
    while True:
        background = rng.uniform(0.1, 0.9, 3)
        direction = rng.normal(size=3)
        direction -= direction @ _LUMA / (_LUMA @ _LUMA) * _LUMA  # no change of luma
        direction /= np.linalg.norm(direction)
        # The longest step along `direction` that stays inside the colour cube.
        with np.errstate(divide="ignore"):
            limits = np.where(direction > 0, (1 - background) / direction, -background / direction)
        longest = float(limits.min())
        if longest >= contrast:
            return background, background + rng.uniform(contrast, longest) * direction


def shape_image(shape: str, rng: np.random.Generator, noise: float = 0.04) -> Image.Image:
    """One picture of `shape`, of random size, colours, position and angle."""
    width, height = (int(v) for v in rng.integers(96, 192, 2))
    background, colour = same_gray_colours(rng)
    side = min(width, height)
    radius = rng.uniform(0.2, 0.4) * side
    cx = rng.uniform(radius, width - radius)
    cy = rng.uniform(radius, height - radius)
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    else:
        corners = 4 if shape == "square" else 3
        angle = rng.uniform(0, 2 * np.pi)
        draw.polygon(
            [
                (
                    cx + radius * np.cos(angle + 2 * np.pi * k / corners),
                    cy + radius * np.sin(angle + 2 * np.pi * k / corners),
                )
                for k in range(corners)
            ],
            fill=255,
        )
    inside = np.asarray(mask, dtype=np.float64)[..., None] / 255.0
    pixels = background * (1 - inside) + colour * inside
    pixels += rng.normal(0, noise, pixels.shape)  # grain over the whole picture
    return Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8), "RGB")


def write_shapes(out: Path, per_label: int = 200, seed: int = 0) -> Path:
    """out/{circle,square,triangle}/NNNN.png or .jpg (every other file a JPEG)."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        (out / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            image = shape_image(shape, rng)
            if i % 2:
                image.save(out / shape / f"{i:04d}.jpg", quality=90)
            else:
                image.save(out / shape / f"{i:04d}.png")
    return out


def _skimage_data() -> ModuleType:
    try:
        from skimage import data
    except ImportError as exc:
        raise SystemExit(
            "this example set comes from scikit-image, a development dependency: "
            "pip install -r requirements-dev.txt (or pip install scikit-image)"
        ) from exc
    return data


def _save_gray(pixels: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scaled = pixels * 255 if pixels.dtype.kind == "f" else pixels
    Image.fromarray(np.round(scaled).astype(np.uint8), "L").save(path)


def write_faces(out: Path) -> Path:
    """out/{face,non_face}/NNN.png: scikit-image's lfw_subset (faces come first)."""
    images = _skimage_data().lfw_subset()
    half = len(images) // 2
    for i, pixels in enumerate(images):
        label = "face" if i < half else "non_face"
        _save_gray(pixels, out / label / f"{i:03d}.png")
    return out


def write_textures(out: Path, patch: int = 48) -> Path:
    """out/{brick,grass,gravel}/NNN.png: non-overlapping patch x patch squares cut
    from scikit-image's three texture pictures."""
    data = _skimage_data()
    for name in ("brick", "grass", "gravel"):
        pixels = getattr(data, name)()
        rows, cols = pixels.shape[0] // patch, pixels.shape[1] // patch
        for r in range(rows):
            for c in range(cols):
                square = pixels[r * patch : (r + 1) * patch, c * patch : (c + 1) * patch]
                _save_gray(square, out / name / f"{r * cols + c:03d}.png")
    return out


FOLDERS: dict[str, Callable[[Path], Path]] = {
    "shapes": write_shapes,
    "faces": write_faces,
    "textures": write_textures,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=[*FOLDERS, "all"])
    parser.add_argument("--out", type=Path, default=Path("data/examples"))
    args = parser.parse_args()
    for name in FOLDERS if args.name == "all" else [args.name]:
        print(FOLDERS[name](args.out / name))


if __name__ == "__main__":
    main()
