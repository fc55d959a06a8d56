"""From image file bytes to an array in the data set's own format.

The data set's format (`ImageFormat`) is a small grayscale grid with ink = 1.0 and
background = 0.0. scikit-learn's digits are 8x8 with 17 levels: each cell counts the
ink pixels of a 4x4 block of a 32x32 bitmap in which the digit fills the height,
keeps its aspect ratio and is centred. Real-world uploads (photos, scans, canvas
drawings) are brought to that format by the same steps: grayscale, ink vs
background, crop, size and stroke normalisation, block counting.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

# An upload's longest side is reduced towards this before any array work: four
# times the 32-pixel bitmap the grid is counted from is plenty for an 8x8 output,
# and the array work then costs about the same for a canvas drawing as for a photo.
# The reduction is by a whole factor (Pillow's `reduce`, in 8 bits: a few times
# cheaper than resampling), the largest that keeps at least this side, so the
# working side ends between this and twice this (a 280x280 drawing: 140x140).
WORKING_SIDE = 128


class ImageError(ValueError):
    """The bytes are not an image this pipeline can read, or break a limit."""


@dataclass(frozen=True)
class ImageFormat:
    """The grid every image is brought to before the embedding."""

    height: int = 8
    width: int = 8
    levels: int = 16  # cell values are k / levels, k in 0..levels
    block: int = 4  # each cell summarises a block x block patch of the bitmap
    # Share of the bitmap covered by ink after stroke normalisation (digits: ~0.30).
    # None keeps the strokes as they are.
    ink_coverage: float | None = 0.30
    # An upload already in this exact format (grayscale, height x width, white ink on
    # black) is taken as is, so exported samples embed to their training vectors.
    passthrough: bool = True

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bitmap_shape(self) -> tuple[int, int]:
        return (self.height * self.block, self.width * self.block)


DIGITS_FORMAT = ImageFormat()


def open_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Read an image's header only (cheap), refusing oversized files and
    decompression bombs before any pixel is decoded; `load_image` decodes it."""
    if not data:
        raise ImageError("the image is empty")
    if len(data) > max_bytes:
        raise ImageError(f"the image is {len(data)} bytes; the limit is {max_bytes}")
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageError(f"not a readable image ({exc.__class__.__name__})") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"the image is corrupt or truncated: {exc}") from exc
    if image.width < 1 or image.height < 1:
        raise ImageError("the image has no pixels")
    if image.width * image.height > max_pixels:
        raise ImageError(
            f"the image is {image.width}x{image.height} pixels; the limit is {max_pixels} pixels"
        )
    if image.format == "JPEG":
        # A phone photo is decoded at 1/2 to 1/8 scale right away (DCT scaling):
        # far less time and memory, and the grid is made from 192 px anyway.
        image.draft(image.mode, (2 * WORKING_SIDE, 2 * WORKING_SIDE))
    return image


def load_image(image: Image.Image) -> Image.Image:
    """Decode the pixels of an image from `open_image`."""
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageError(f"not a readable image ({exc.__class__.__name__})") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"the image is corrupt or truncated: {exc}") from exc
    return image


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode image file bytes, refusing oversized files and decompression bombs."""
    return load_image(open_image(data, max_bytes=max_bytes, max_pixels=max_pixels))


def to_grayscale(image: Image.Image, side: int = WORKING_SIDE) -> np.ndarray:
    """Grayscale in [0, 1], reduced as WORKING_SIDE says (`side`); EXIF rotation
    applied; transparency flattened so the strokes keep their contrast whatever
    colour they are."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:  # else it would copy
        image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 250:  # some pixels are see-through
            alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
            gray = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
            opaque = alpha > 0.5
            ink_is_dark = opaque.any() and gray[opaque].mean() < 0.5
            backdrop = 1.0 if ink_is_dark else 0.0
            flat = gray * alpha + backdrop * (1.0 - alpha)
            return _box_reduce(flat, max(flat.shape) // side)
        image = rgba
    # In 8 bits (one byte a pixel, where RGB takes four): the rounding of the reduced
    # pixels (under 1/500) is far below any contrast the ink is told by.
    gray = image if image.mode == "L" else image.convert("L")  # (converting L copies it)
    factor = max(gray.size) // side
    if factor > 1:
        gray = gray.reduce(factor)
    return np.asarray(gray, dtype=np.float32) * np.float32(1 / 255)


def _reduction(width: int, height: int, side: int) -> int:
    """The smallest whole factor that brings the longest side to at most `side`."""
    return max(1, -(-max(width, height) // side))


def _shrink(gray: np.ndarray, side: int) -> np.ndarray:
    """A float image box-filtered by the smallest whole factor that brings its longest
    side to at most `side`."""
    return _box_reduce(gray, _reduction(gray.shape[1], gray.shape[0], side))


def _box_reduce(gray: np.ndarray, factor: int) -> np.ndarray:
    """Mean of every factor x factor block, as Pillow's `reduce` (a block cut by the
    edge averages what it holds)."""
    if factor <= 1:
        return gray
    height, width = gray.shape
    if factor <= _SLICED_UP_TO:
        sums = _block_sums(_block_sums(gray, factor).T, factor).T
    else:
        sums = np.add.reduceat(
            np.add.reduceat(gray, np.arange(0, height, factor), axis=0),
            np.arange(0, width, factor),
            axis=1,
        )
    rows = np.minimum(factor, height - np.arange(0, height, factor))
    cols = np.minimum(factor, width - np.arange(0, width, factor))
    return sums / (rows[:, None] * cols[None, :]).astype(np.float32)


# Up to this factor, np.add.reduceat adds a block's rows (or columns) as `_block_sums`
# does, bit for bit; beyond it, it sums a row's columns pairwise.
_SLICED_UP_TO = 8


def _block_sums(values: np.ndarray, factor: int) -> np.ndarray:
    """The sums of every `factor` rows, by whole-array adds of strided slices: the
    first row of a block plus the others' sum in order, which is how np.add.reduceat
    adds them, at a third of its cost on the arrays here."""
    rest = values[1::factor].copy()
    for k in range(2, factor):
        part = values[k::factor]
        rest[: len(part)] += part
    out = values[::factor].copy()
    out[: len(rest)] += rest
    return out


def _percentile(values: np.ndarray, q: float) -> float:
    """np.percentile's default (linear) method by one partial sort: numpy's own
    costs several times more on the small arrays here."""
    return _percentiles(values, (q,))[0]


def _percentiles(values: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """`_percentile` of each of `qs`, from a single partial sort."""
    flat = values.reshape(-1)
    positions = [q / 100 * (flat.size - 1) for q in qs]
    kth = sorted({k for p in positions for k in (int(p), min(int(p) + 1, flat.size - 1))})
    ordered = np.partition(flat, kth)
    out = []
    for position in positions:
        low = int(position)
        below = float(ordered[low])
        if position != low:  # the next order statistic, in its place after the partition
            below += (position - low) * (float(ordered[low + 1]) - below)
        out.append(below)
    return out


def _median(values: np.ndarray) -> float:
    return _percentile(values, 50.0)


@lru_cache(maxsize=64)
def _surface(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic terms (1, x, y, x², xy, y²) of every pixel, coordinates in [-1, 1],
    and every pixel's products of two terms (its share of the normal equations)."""
    yy, xx = np.mgrid[-1 : 1 : complex(0, height), -1 : 1 : complex(0, width)]
    terms = np.stack([np.ones_like(xx), xx, yy, xx**2, xx * yy, yy**2], axis=-1).reshape(-1, 6)
    products = (terms[:, :, None] * terms[:, None, :]).reshape(-1, 36)
    terms.flags.writeable = products.flags.writeable = False  # shared between calls
    return terms, products


_RIDGE = 1e-6 * np.eye(6)  # tiny ridge: a thin strip is degenerate


@lru_cache(maxsize=64)
def _axes(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    x.flags.writeable = y.flags.writeable = False
    return x, y


def background_of(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """The paper (or screen) under the ink as a smooth surface, and whether the ink
    is darker than it. The paper is most of the picture, so its level starts as the
    median grey; the ink is on the side of the grey range farther from it (a table
    or a paper edge in the frame is then on the ink's side and is cut off later).
    Photos light a page unevenly (gradients, vignetting), so a quadratic surface is
    fitted to the pixels that do not look like ink, up to three times over. The fit
    runs on a copy of at most 48x48 pixels: it is smooth anyway."""
    height, width = gray.shape
    small = _shrink(gray, 48)
    level = _median(small)
    low, high = _percentiles(gray, (0.5, 99.5))
    dark_ink = bool((level - low) >= (high - level))
    sign = 1.0 if dark_ink else -1.0
    terms, products = _surface(*small.shape)
    values = small.ravel().astype(np.float64)
    coef = np.array([level, 0, 0, 0, 0, 0], dtype=np.float64)
    kept = None
    for _ in range(3):
        signed = (terms @ coef - values) * sign
        spread = _percentile(signed, 99.5)
        keep = signed < max(0.3 * spread, 0.02)
        if kept is not None and np.array_equal(keep, kept):
            break  # the same pixels would give the same fit again
        kept = keep
        keep = keep.astype(np.float64)
        if keep.sum() < 12:
            break
        # The least-squares fit over the kept pixels, as weights 0/1: no copies.
        gram = (keep @ products).reshape(6, 6) + _RIDGE
        coef = np.linalg.solve(gram, (keep * values) @ terms)
    # The surface at full size, term by term (broadcast rows and columns).
    x, y = _axes(height, width)
    c = coef.astype(np.float32)
    # Separable but for the xy term: one row and one column, then a single full pass.
    surface = (c[0] + c[1] * x + c[3] * x * x) + (c[2] * y + c[5] * y * y) + (c[4] * y) * x
    return surface, dark_ink


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] whatever the polarity and the lighting: the distance
    from the fitted background, towards the ink's side."""
    background, dark_ink = background_of(gray)
    signed = background - gray if dark_ink else gray - background
    ink = np.maximum(signed, np.float32(0))
    peak = _percentile(ink, 99.5)
    # Paper grain and sensor noise: the spread (median absolute deviation) of the
    # residual over the pixels that do not look like ink. Not over all pixels: in a
    # tight crop the strokes can be half the picture. Every other row and column is
    # enough for a median, and unlike a smaller copy it keeps the noise's own spread.
    sampled = signed[::2, ::2] if signed.size >= 64 else signed
    paper = sampled[sampled < 0.3 * peak]
    if paper.size < 16:
        paper = sampled
    noise = 1.4826 * _median(np.abs(paper - np.float32(_median(paper))))
    if peak <= max(0.04, 5 * noise):  # a blank image: no contrast above the noise
        return np.zeros_like(gray)
    ink *= np.float32(1 / peak)
    return np.minimum(ink, np.float32(1), out=ink)


def _otsu_threshold(values: np.ndarray) -> float:
    # np.histogram's 64 bins over [0, 1], by integer counting (values are in [0, 1]).
    bins = (values * np.float32(64)).astype(np.uint8)
    hist = np.bincount(bins.ravel(), minlength=65)
    hist[63] += hist[64]  # 1.0 falls in the last bin, as in np.histogram
    hist = hist[:64]
    centres = (np.arange(64) + 0.5) / 64
    weight_low = np.cumsum(hist)
    weight_high = weight_low[-1] - weight_low
    mean_low = np.cumsum(hist * centres) / np.maximum(weight_low, 1)
    total = (hist * centres).sum()
    mean_high = (total - np.cumsum(hist * centres)) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(centres[int(np.argmax(between))])


_SQUARE = np.ones((3, 3), dtype=bool)  # the 8 neighbours: diagonal strokes hold together


def ink_mask(ink: np.ndarray) -> np.ndarray:
    """The strokes as a boolean mask, with specks and paper texture removed."""
    threshold = max(_otsu_threshold(ink), 0.25)
    mask = ink > threshold
    labels, count = ndimage.label(mask, structure=_SQUARE)
    if count > 1:
        # What runs along the picture's edge (a table or the shadow beyond the paper's
        # edge) is not a digit, when something else is left.
        height, width = mask.shape
        edge = [
            i + 1
            for i, (rows, cols) in enumerate(ndimage.find_objects(labels))
            if (rows.start == 0 or cols.start == 0 or rows.stop == height or cols.stop == width)
            and (rows.stop - rows.start >= 0.95 * height or cols.stop - cols.start >= 0.95 * width)
        ]
        if edge and len(edge) < count:
            mask &= ~np.isin(labels, edge)
            labels, count = ndimage.label(mask, structure=_SQUARE)
    if count > 1:
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
        keep = np.flatnonzero(sizes >= 0.08 * sizes.max()) + 1
        mask = np.isin(labels, keep)
    return mask


def _fit_in_bitmap(mask: np.ndarray, fmt: ImageFormat) -> np.ndarray:
    """Crop to the ink, scale so it fills the bitmap's height (or width, if wider)
    keeping its aspect ratio, and centre it."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    # In 8 bits: Pillow resizes one byte a pixel several times faster than floats.
    crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.uint8) * np.uint8(255)
    out_h, out_w = fmt.bitmap_shape
    scale = min(out_h / crop.shape[0], out_w / crop.shape[1])
    new_h = max(1, min(out_h, round(crop.shape[0] * scale)))
    new_w = max(1, min(out_w, round(crop.shape[1] * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    scaled = np.asarray(Image.fromarray(crop).resize((new_w, new_h), resample))
    bitmap = np.zeros((out_h, out_w), dtype=bool)
    top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    # A low cut (0.2) keeps thin strokes that a box filter made faint; thickness is
    # fixed next.
    bitmap[top : top + new_h, left : left + new_w] = scaled > 51
    return bitmap


def _cross_step(bitmap: np.ndarray, grow: bool) -> np.ndarray:
    """One binary dilation (grow) or erosion by the 4-neighbour cross, nothing beyond
    the edges (scipy.ndimage's binary_dilation / binary_erosion with their defaults),
    by shifted slices: on a 32x32 bitmap scipy's call costs more than the work."""
    padded = np.zeros((bitmap.shape[0] + 2, bitmap.shape[1] + 2), dtype=bool)
    padded[1:-1, 1:-1] = bitmap
    combine = np.logical_or if grow else np.logical_and
    out = combine(bitmap, padded[:-2, 1:-1])
    combine(out, padded[2:, 1:-1], out=out)
    combine(out, padded[1:-1, :-2], out=out)
    return combine(out, padded[1:-1, 2:], out=out)


def normalise_strokes(bitmap: np.ndarray, coverage: float) -> np.ndarray:
    """Thicken or thin the strokes until the ink covers about `coverage` of the
    bitmap, as pen width varies between writers, pens and resolutions: the first of
    the bitmap, two thinnings and eight thickenings whose coverage is nearest."""
    target = coverage * bitmap.size  # in pixels: no float mean per candidate
    best, best_gap = bitmap, abs(int(bitmap.sum()) - target)
    # Each thinning covers less, each thickening more: once a step passes the target,
    # the next ones are only farther from it.
    for grow, steps in ((False, 2), (True, 8)):
        current = bitmap
        for _ in range(steps):
            if (int(current.sum()) <= target) if not grow else (int(current.sum()) >= target):
                break
            current = _cross_step(current, grow)
            count = int(current.sum())
            if not grow and count == 0:
                break
            if abs(count - target) < best_gap:
                best, best_gap = current, abs(count - target)
    return best


def blocks_to_grid(bitmap: np.ndarray, fmt: ImageFormat) -> np.ndarray:
    """Count ink per block, as the data set's cells do, scaled to [0, 1]."""
    grid = bitmap.reshape(fmt.height, fmt.block, fmt.width, fmt.block).mean(axis=(1, 3))
    return np.round(grid * fmt.levels) / fmt.levels


def is_native(image: Image.Image, fmt: ImageFormat) -> bool:
    return fmt.passthrough and image.mode == "L" and image.size == (fmt.width, fmt.height)


def native_from_pixels(pixels: np.ndarray, fmt: ImageFormat) -> np.ndarray:
    """Pixel values 0..255 of a native image back to cell values k / levels."""
    return np.round(pixels.astype(np.float64) * fmt.levels / 255.0) / fmt.levels


def native_to_pixels(grid: np.ndarray) -> np.ndarray:
    """Cell values k / levels to 8-bit pixels (the data set's own file format)."""
    return np.round(np.asarray(grid, dtype=np.float64) * 255.0).astype(np.uint8)


def to_format(image: Image.Image, fmt: ImageFormat = DIGITS_FORMAT) -> np.ndarray:
    """Any decoded image -> a (height, width) float grid in [0, 1], ink = 1."""
    if is_native(image, fmt):
        return native_from_pixels(np.asarray(image), fmt)
    ink = ink_map(to_grayscale(image))
    mask = ink_mask(ink)
    if not mask.any():
        return np.zeros(fmt.shape)
    bitmap = _fit_in_bitmap(mask, fmt)
    if fmt.ink_coverage is not None:
        bitmap = normalise_strokes(bitmap, fmt.ink_coverage)
    return blocks_to_grid(bitmap, fmt)


def bytes_to_format(
    data: bytes, fmt: ImageFormat = DIGITS_FORMAT, *, max_bytes: int, max_pixels: int
) -> np.ndarray:
    return to_format(decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels), fmt)


def grid_to_png(grid: np.ndarray) -> bytes:
    """A grid as a PNG in the data set's own format (grayscale, white ink on black)."""
    buffer = io.BytesIO()
    Image.fromarray(native_to_pixels(grid)).save(buffer, format="PNG")
    return buffer.getvalue()
