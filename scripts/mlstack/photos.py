"""What a user's photo becomes before the PCA: features that keep its colour, shape
and texture, where the digits' grid keeps only the strokes.

The picture is brought to a small square (`PhotoFeatures.side`, colour kept) and
described by five blocks, each scaled to unit length:

- a joint RGB colour histogram (`colour_levels` per channel);
- HOG, histograms of oriented gradients of the colour picture (the outlines and
  where they are, also between two colours of one gray level), computed as
  scikit-image's `hog` does (cells, 2x2 blocks, L2-Hys) but in numpy alone, so that
  the service images need no scikit-image;
- the orientation histogram of the same gradients over the whole picture (the
  outlines' directions wherever the object is);
- a uniform local binary pattern histogram (fine texture: grain, bricks, grass);
- a small gray grid (where the light and dark parts are).

The embedding then weighs the blocks so that each brings the same variance to its
PCA (`block_weights`): a long block (HOG) would otherwise drown the short ones.

A picture is blank, with nothing to classify, only when it truly is uniform: every
colour channel's spread below `blank_spread`. A coloured shape on a background of
the same gray level is not blank (the digits' ink detection, made for gray strokes
on paper, would find nothing there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

# ITU-R 601 luma, as PIL's convert("L").
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class PhotoFeatures:
    """The recipe of a photo's features (pickled with the embedding: a saved model
    keeps the recipe it was trained with)."""

    side: int = 64  # the square every picture is resized to, colour kept
    cell: int = 16  # HOG cell, in pixels of that square
    orientations: int = 9  # HOG orientation bins over 0-180 degrees
    edge_bins: int = 18  # the whole picture's orientation histogram, over 0-180 degrees
    colour_levels: int = 4  # per channel: a 4x4x4 joint histogram
    grid: int = 8  # the gray grid's side
    # Blank: every channel's standard deviation below this (values in [0, 1]); a
    # JPEG of one flat colour stays far below, any visible object far above.
    blank_spread: float = 0.02

    @property
    def blocks(self) -> dict[str, int]:
        """Each block's name and length, in the order of the feature vector."""
        cells = self.side // self.cell
        return {
            "colour": self.colour_levels**3,
            "hog": (cells - 1) ** 2 * 4 * self.orientations,
            "edges": self.edge_bins,
            "texture": _LBP_BINS,
            "gray": self.grid**2,
        }

    @property
    def size(self) -> int:
        """Length of the feature vector."""
        return sum(self.blocks.values())

    def pixels(self, image: Image.Image) -> np.ndarray:
        """A decoded image -> (side, side, 3) RGB in [0, 1]."""
        return square_pixels(image, self.side)

    def is_blank(self, rgb: np.ndarray) -> bool:
        """Whether the picture is uniform: nothing in it to classify."""
        return is_uniform(rgb, self.blank_spread)

    def weights(self, features: np.ndarray) -> np.ndarray:
        """The PCA's weight of each feature, fitted on the training rows (block_weights)."""
        return block_weights(self, features)

    def summary(self) -> dict:
        """What the manifest records of the recipe."""
        return {"kind": "photo", **vars(self)}

    def of_pixels(self, rgb: np.ndarray) -> np.ndarray:
        """(side, side, 3) RGB in [0, 1] -> the feature vector (float32)."""
        gray = rgb @ _LUMA
        magnitude, degrees = gradients(rgb)
        blocks = (
            colour_histogram(rgb, self.colour_levels),
            hog(rgb, self.cell, self.orientations, (magnitude, degrees)),
            orientation_histogram(magnitude, degrees, self.edge_bins),
            lbp_histogram(gray),
            gray_grid(gray, self.grid),
        )
        return np.concatenate([_unit(block) for block in blocks])

    def of_image(self, image: Image.Image) -> tuple[np.ndarray, bool]:
        """A decoded image -> (its features, whether it is blank)."""
        rgb = self.pixels(image)
        return self.of_pixels(rgb), self.is_blank(rgb)


def square_pixels(image: Image.Image, side: int) -> np.ndarray:
    """A decoded image -> (side, side, 3) RGB in [0, 1]; EXIF rotation applied,
    transparency laid on white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    # reducing_gap: a large photo is first reduced by an integer factor (fast), then
    # box-filtered to the square.
    square = image.convert("RGB").resize((side, side), Image.Resampling.BOX, reducing_gap=3.0)
    return np.asarray(square, dtype=np.float32) / 255.0


def is_uniform(rgb: np.ndarray, spread: float) -> bool:
    """Whether every colour channel's standard deviation is below `spread`."""
    return bool(rgb.reshape(-1, 3).std(axis=0).max() < spread)


def block_weights(photo: PhotoFeatures, features: np.ndarray) -> np.ndarray:
    """A weight per feature, the same within a block, so that every block's features
    together have a variance of 1 over `features` (n, photo.size), the training rows."""
    weights = []
    start = 0
    for size in photo.blocks.values():
        variance = float(features[:, start : start + size].var(axis=0).sum())
        weights.append(np.full(size, 1 / np.sqrt(variance) if variance > 0 else 0.0))
        start += size
    return np.concatenate(weights)


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def colour_histogram(rgb: np.ndarray, levels: int) -> np.ndarray:
    """Share of the pixels in each of levels**3 colour boxes."""
    q = np.minimum((rgb * levels).astype(np.intp), levels - 1)
    codes = (q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]
    return np.bincount(codes.ravel(), minlength=levels**3) / codes.size


def gradients(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(magnitude, orientation in degrees 0-180) of every pixel's gradient, by central
    differences; in a colour picture, those of the channel where it is strongest (an
    edge between two colours of one gray level counts). pixels: (h, w) or (h, w, c)."""
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    gx = np.zeros_like(pixels)
    gy = np.zeros_like(pixels)
    gx[:, 1:-1] = pixels[:, 2:] - pixels[:, :-2]
    gy[1:-1, :] = pixels[2:, :] - pixels[:-2, :]
    magnitude = np.hypot(gx, gy)
    if pixels.shape[2] > 1:
        strongest = magnitude.argmax(axis=2)[..., None]
        gx, gy, magnitude = (np.take_along_axis(a, strongest, 2) for a in (gx, gy, magnitude))
    degrees = np.rad2deg(np.arctan2(gy[..., 0], gx[..., 0])) % 180
    return magnitude[..., 0], degrees


def _orientation_bins(degrees: np.ndarray, bins: int) -> np.ndarray:
    """Each orientation's bin among `bins` equal ones over 0-180 degrees."""
    return np.minimum((degrees / (180 / bins)).astype(np.intp), bins - 1)


def orientation_histogram(magnitude: np.ndarray, degrees: np.ndarray, bins: int) -> np.ndarray:
    """Gradient strength per orientation over the whole picture: which way its edges
    run wherever they are (a circle's evenly, a square's in two directions)."""
    index = _orientation_bins(degrees, bins)
    return np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=bins)


def hog(
    pixels: np.ndarray,
    cell: int,
    orientations: int,
    computed: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Histograms of oriented gradients exactly as scikit-image's `hog` computes them
    with 2x2-cell blocks and L2-Hys (tests/scripts/test_photos.py compares the two):
    `gradients`, orientations in equal bins, magnitudes averaged per cell, each block
    of cells normalised. pixels: (h, w) or (h, w, channels), h and w multiples of
    `cell`; `computed`: their `gradients`, when already at hand."""
    magnitude, degrees = computed or gradients(pixels)
    height, width = magnitude.shape
    rows, cols = height // cell, width // cell
    bins = _orientation_bins(degrees, orientations)
    cell_of = (np.arange(height) // cell)[:, None] * cols + (np.arange(width) // cell)[None, :]
    cells = np.bincount(
        (cell_of * orientations + bins).ravel(),
        weights=magnitude.ravel(),
        minlength=rows * cols * orientations,
    ).reshape(rows, cols, orientations) / (cell * cell)
    blocks = np.concatenate(
        [cells[:-1, :-1], cells[:-1, 1:], cells[1:, :-1], cells[1:, 1:]], axis=-1
    )
    eps = 1e-5
    blocks = blocks / np.sqrt((blocks**2).sum(axis=-1, keepdims=True) + eps**2)
    blocks = np.minimum(blocks, 0.2)
    blocks = blocks / np.sqrt((blocks**2).sum(axis=-1, keepdims=True) + eps**2)
    return blocks.ravel()


# The 8 neighbours at radius 1, in order around the circle, as scikit-image places
# them: the diagonal ones fall between pixels and are read bilinearly.
_LBP_STEPS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))
_LBP_BINS = len(_LBP_STEPS) + 2
_DIAGONAL = 0.70711  # sin(45 degrees), rounded as scikit-image rounds it


def lbp_histogram(gray: np.ndarray) -> np.ndarray:
    """Share of the inner pixels in each uniform local binary pattern, as scikit-image's
    `local_binary_pattern(gray, 8, 1, "uniform")` codes them: the number of neighbours
    at least as bright as the pixel when those form one arc, else one bin for every
    other pattern. A diagonal neighbour as bright as the pixel within rounding is a
    tie that scikit-image's interpolation breaks either way; here it counts as
    brighter."""
    gray = np.asarray(gray, dtype=np.float64)
    height, width = gray.shape

    def shifted(dy: int, dx: int) -> np.ndarray:
        return gray[1 + dy : height - 1 + dy, 1 + dx : width - 1 + dx]

    centre = shifted(0, 0)
    near, far = 1 - _DIAGONAL, _DIAGONAL
    bits = []
    for dy, dx in _LBP_STEPS:
        # The neighbour minus the centre; bilinear for a diagonal one, written as
        # differences so that a flat patch gives exactly 0 (a tie counts as brighter).
        if dy and dx:
            rise = near * far * (shifted(dy, 0) - centre + shifted(0, dx) - centre) + (
                far * far * (shifted(dy, dx) - centre)
            )
        else:
            rise = shifted(dy, dx) - centre
        bits.append(rise >= 0)
    bits = np.stack(bits)
    ones = bits.sum(axis=0)
    changes = (bits != np.roll(bits, 1, axis=0)).sum(axis=0)
    codes = np.where(changes <= 2, ones, len(_LBP_STEPS) + 1)
    return np.bincount(codes.ravel(), minlength=_LBP_BINS) / codes.size


def gray_grid(gray: np.ndarray, side: int) -> np.ndarray:
    """The gray picture averaged down to side x side (its size a multiple of side)."""
    height, width = gray.shape
    return gray.reshape(side, height // side, side, width // side).mean(axis=(1, 3))
