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


def open_image(
    data: bytes, *, max_bytes: int, max_pixels: int, grayscale: bool = False
) -> Image.Image:
    """Read an image's header only (cheap), refusing oversized files and
    decompression bombs before any pixel is decoded; `load_image` decodes it.
    `grayscale`: only the grey levels will be read (the grid), so a colour JPEG may
    be decoded to its luminance alone."""
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
        # A phone photo is decoded at 1/2 to 1/8 scale right away (DCT scaling): far
        # less time and memory, and the grid is made from 128 to 255 px anyway. For
        # the grid, a colour JPEG is decoded to its luminance (what the conversion to
        # grayscale computes, but for rounding): no chroma upsampling nor conversion.
        mode = "L" if grayscale else image.mode
        image.draft(mode, (2 * WORKING_SIDE, 2 * WORKING_SIDE))
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


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, grayscale: bool = False
) -> Image.Image:
    """Decode image file bytes, refusing oversized files and decompression bombs
    (`grayscale` as `open_image` takes it)."""
    opened = open_image(data, max_bytes=max_bytes, max_pixels=max_pixels, grayscale=grayscale)
    return load_image(opened)


def to_grayscale(image: Image.Image, side: int = WORKING_SIDE) -> np.ndarray:
    """8-bit grayscale, reduced as WORKING_SIDE says (`side`); EXIF rotation applied;
    transparency flattened so the strokes keep their contrast whatever colour they
    are. In 8 bits (one byte a pixel, where RGB takes four): the rounding of the
    reduced pixels (under 1/500) is far below any contrast the ink is told by."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:  # else it would copy
        image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = rgba.getchannel("A")
        if alpha.getextrema()[0] < 250:  # some pixels are see-through
            gray = rgba.convert("L")
            opaque = np.asarray(alpha) > 127
            ink_is_dark = opaque.any() and np.asarray(gray)[opaque].mean() < 127.5
            backdrop = Image.new("L", gray.size, 255 if ink_is_dark else 0)
            image = Image.composite(gray, backdrop, alpha)
        else:
            image = rgba
    gray = image if image.mode == "L" else image.convert("L")  # (converting L copies it)
    factor = max(gray.size) // side
    if factor > 1:
        gray = gray.reduce(factor)
    return np.asarray(gray)


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


def _count_percentiles(counts: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """`_percentiles` of 8-bit values from their histogram (value v seen counts[v]
    times): the same figures without touching the pixels."""
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    out = []
    for q in qs:
        position = q / 100 * (total - 1)
        low = int(position)
        # The k-th order statistic (from 0) is the first value seen more than k times
        # up to it.
        below, above = np.searchsorted(cumulative, (low, min(low + 1, total - 1)), side="right")
        out.append(float(below) + (position - low) * float(above - below))
    return out


def background_of(gray: np.ndarray, low: float, high: float) -> tuple[np.ndarray, bool]:
    """The paper (or screen) under the ink as a smooth surface, and whether the ink
    is darker than it; `low` and `high` are the 0.5th and 99.5th percentiles of
    `gray` (in [0, 1]). The paper is most of the picture, so its level starts as the
    median grey; the ink is on the side of the grey range farther from it (a table
    or a paper edge in the frame is then on the ink's side and is cut off later).
    Photos light a page unevenly (gradients, vignetting), so a quadratic surface is
    fitted to the pixels that do not look like ink, up to three times over. The fit
    runs on a copy of at most 48x48 pixels: it is smooth anyway."""
    height, width = gray.shape
    small = _shrink(gray, 48)
    level = _median(small)
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


# Below this ink strength (of the [0, 1] range) at the 99.5th percentile, the picture
# is blank.
_BLANK_CONTRAST = 0.04


def ink_map(gray: np.ndarray, low: float, high: float) -> np.ndarray:
    """Ink strength in [0, 1] whatever the polarity and the lighting: the distance
    from the fitted background, towards the ink's side (`gray` in [0, 1], `low` and
    `high` as `background_of` takes them)."""
    background, dark_ink = background_of(gray, low, high)
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
        # A small picture (an 8x8 file): the sample holds too few paper pixels, and
        # with the strokes counted as noise every digit would look blank. All of them.
        paper = signed[signed < 0.3 * peak]
        if paper.size < 16:
            paper = signed
    noise = 1.4826 * _median(np.abs(paper - np.float32(_median(paper))))
    if peak <= max(_BLANK_CONTRAST, 5 * noise):  # a blank image: no contrast above the noise
        return np.zeros_like(gray)
    ink *= np.float32(1 / peak)
    return np.minimum(ink, np.float32(1), out=ink)


_CENTRES = (np.arange(64) + 0.5) / 64  # of np.histogram's 64 bins over [0, 1]


def _otsu_threshold(values: np.ndarray, counts: np.ndarray | None = None) -> float:
    """Otsu's threshold of values in [0, 1]; `counts`: how often each value is seen
    (each once when None)."""
    # The histogram by integer counting (values are in [0, 1]).
    bins = (values * np.float32(64)).astype(np.uint8)
    hist = np.bincount(bins.ravel(), weights=counts, minlength=65)
    hist[63] += hist[64]  # 1.0 falls in the last bin, as in np.histogram
    hist = hist[:64]
    weight_low = np.cumsum(hist)
    moment_low = np.cumsum(hist * _CENTRES)
    weight_high = weight_low[-1] - weight_low
    mean_low = moment_low / np.maximum(weight_low, 1)
    mean_high = (moment_low[-1] - moment_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(_CENTRES[int(np.argmax(between))])


_MIN_THRESHOLD = 0.25  # Otsu's threshold on a clean stroke can sit in its soft edge
_SQUARE = np.ones((3, 3), dtype=bool)  # the 8 neighbours: diagonal strokes hold together
_GREYS = np.arange(256, dtype=np.float32) * np.float32(1 / 255)  # 8-bit values in [0, 1]
# At most this share of what the surface fit takes for paper may be faint ink off the
# paper's level for the paper to count as flat (canvas drawings: 0.2% to 2.5%; the
# digits' own enlarged, where the fit's surface dips by 0.17: 5% to 27%).
_FLAT_FAINT_SHARE = 0.04


def _flat_paper_ink(
    gray: np.ndarray, counts: np.ndarray, low: float, high: float
) -> np.ndarray | None:
    """The ink of a picture whose paper is flat (a canvas drawing, a clean scan: at
    least half the pixels at one grey level, none beyond it away from the ink, and
    nearly all those the surface fit takes for paper at that level), or None when it
    is not. The fit would find that very level and the noise is nil, so both are
    skipped; ink strength, blank test and Otsu's threshold are the same steps as
    `ink_map` and `ink_mask` take, computed once per grey level and weighed by the
    histogram `counts` instead of once per pixel."""
    level = int(np.argmax(counts))
    if 2 * counts[level] < gray.size:
        return None
    dark_ink = not counts[level + 1 :].any()  # nothing lighter than the paper
    if dark_ink:
        signed, peak = _GREYS[level] - _GREYS, (level - low) / 255
    elif not counts[:level].any():
        signed, peak = _GREYS - _GREYS[level], (high - level) / 255
    else:
        return None
    if peak <= _BLANK_CONTRAST:
        return np.zeros(gray.shape, dtype=bool)
    # The fit's first round takes for paper whatever is fainter than 30% of the
    # strongest ink: when that is more than a few pixels off the paper's level (large
    # faint strokes, as in an enlarged scan of the digits' own 17 levels), the fitted
    # surface dips under them and only the fit gives its answer.
    faint = counts[(signed > 0) & (signed < max(0.3 * peak, 0.02))].sum()
    if faint > _FLAT_FAINT_SHARE * (faint + counts[level]):
        return None
    ink = np.minimum(np.maximum(signed, np.float32(0)) * np.float32(1 / peak), np.float32(1))
    inked = ink > max(_otsu_threshold(ink, counts), _MIN_THRESHOLD)
    # Ink grows away from the paper's level: the inked levels are those below the
    # first one that is not (dark ink), or from the first one that is (light ink).
    if not inked.any():
        return np.zeros(gray.shape, dtype=bool)
    return gray < np.argmin(inked) if dark_ink else gray >= np.argmax(inked)


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """The strokes of an 8-bit grayscale picture as a boolean mask cropped to their
    box (empty when there are none), specks and paper texture removed."""
    counts = np.bincount(gray.ravel(), minlength=256)
    low, high = _count_percentiles(counts, (0.5, 99.5))
    mask = _flat_paper_ink(gray, counts, low, high)
    if mask is None:
        ink = ink_map(gray * np.float32(1 / 255), low / 255, high / 255)
        mask = ink > max(_otsu_threshold(ink), _MIN_THRESHOLD)
    return _strokes_only(mask)


def _crop(mask: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The mask cropped to the box of what it holds (empty if nothing), and the box's
    top and left."""
    rows = np.flatnonzero(mask.any(axis=1))
    if not rows.size:
        return mask[:0, :0], 0, 0
    cols = np.flatnonzero(mask.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    return mask[top : rows[-1] + 1, left : cols[-1] + 1], top, left


def _strokes_only(mask: np.ndarray) -> np.ndarray:
    """The mask without what runs along the picture's edge and without specks,
    cropped to the box of what is left. Regions are labelled in the ink's box only
    (a fraction of a canvas drawing): nothing lies outside it."""
    box, top, left = _crop(mask)
    if not box.size:
        return box
    labels, count = ndimage.label(box, structure=_SQUARE)
    if count <= 1:
        return box
    # What runs along the picture's edge (a table or the shadow beyond the paper's
    # edge) is not a digit, when something else is left.
    height, width = mask.shape
    edge = [
        i + 1
        for i, (rows, cols) in enumerate(ndimage.find_objects(labels))
        if (
            rows.start + top == 0
            or cols.start + left == 0
            or rows.stop + top == height
            or cols.stop + left == width
        )
        and (rows.stop - rows.start >= 0.95 * height or cols.stop - cols.start >= 0.95 * width)
    ]
    if edge and len(edge) < count:
        box = box & ~np.isin(labels, edge)
        labels, count = ndimage.label(box, structure=_SQUARE)
    if count > 1:
        sizes = ndimage.sum_labels(box, labels, index=np.arange(1, count + 1))
        keep = np.flatnonzero(sizes >= 0.08 * sizes.max()) + 1
        box = np.isin(labels, keep)
    return _crop(box)[0]


def _fit_in_bitmap(strokes: np.ndarray, fmt: ImageFormat) -> np.ndarray:
    """Scale the strokes (a mask cropped to their box) so they fill the bitmap's
    height (or width, if wider) keeping their aspect ratio, and centre them."""
    out_h, out_w = fmt.bitmap_shape
    scale = min(out_h / strokes.shape[0], out_w / strokes.shape[1])
    new_h = max(1, min(out_h, round(strokes.shape[0] * scale)))
    new_w = max(1, min(out_w, round(strokes.shape[1] * scale)))
    # Pillow's 8-bit resize of the mask as 0/255 pixels, box filter down, bilinear up.
    upscale = scale >= 1
    rows = _resampling(strokes.shape[0], new_h, upscale)
    cols = _resampling(strokes.shape[1], new_w, upscale)
    # Its two passes, columns first, as matrix products on 2**22 fixed-point weights
    # (exact in float64): a round trip through a Pillow image costs several times more.
    # No clipping: the weights are not negative and round to a sum of at most 1.
    across = np.floor((strokes @ cols.T * 255 + _HALF) * _UNIT)
    scaled = rows @ across + _HALF
    bitmap = np.zeros((out_h, out_w), dtype=bool)
    top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    # A low cut (0.2, a pixel over 51) keeps thin strokes that a box filter made faint;
    # thickness is fixed next.
    bitmap[top : top + new_h, left : left + new_w] = scaled >= 52 / _UNIT
    return bitmap


_PRECISION_BITS = 22  # Pillow's fixed point for 8-bit resampling (libImaging/Resample.c)
_HALF = float(1 << (_PRECISION_BITS - 1))
_UNIT = 1 / (1 << _PRECISION_BITS)


@lru_cache(maxsize=1024)
def _resampling(size: int, new_size: int, upscale: bool) -> np.ndarray:
    """Pillow's resampling of one axis from `size` to `new_size` pixels as a
    (new_size, size) matrix of its 8-bit fixed-point weights (Resample.c's
    precompute_coeffs and normalize_coeffs_8bpc, step for step in doubles): its
    bilinear filter when upscaling, else its box filter."""
    scale = size / new_size
    filter_scale = max(scale, 1.0)
    support = (1.0 if upscale else 0.5) * filter_scale
    matrix = np.zeros((new_size, size))
    for out in range(new_size):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), size)
        weights = []
        for x in range(first, last):
            at = (x - centre + 0.5) * (1.0 / filter_scale)
            if upscale:
                weights.append(max(1.0 - abs(at), 0.0))
            else:
                weights.append(1.0 if -0.5 < at <= 0.5 else 0.0)
        total = 0.0
        for weight in weights:  # in order, as the C code adds them
            total += weight
        for x, weight in zip(range(first, last), weights, strict=True):
            normalised = weight / total if total else weight
            matrix[out, x] = int(0.5 + normalised * (1 << _PRECISION_BITS))
    matrix.flags.writeable = False  # shared between calls
    return matrix


@lru_cache(maxsize=8)
def _bit_masks(height: int, width: int) -> tuple[int, int, int]:
    """For a bitmap as one integer (`_to_bits`): the bits of every pixel, of every
    pixel but the first column's, and of every pixel but the last column's."""
    everything = (1 << (height * width)) - 1
    # A row is `width` bits, its first column the highest (`_to_bits` is big-endian).
    last = sum(1 << (width * r) for r in range(height))
    first = last << (width - 1)
    return everything, everything & ~first, everything & ~last


def _to_bits(bitmap: np.ndarray) -> int:
    """A boolean bitmap as one integer, row by row, its first pixel the highest bit."""
    padding = -bitmap.size % 8
    return int.from_bytes(np.packbits(bitmap).tobytes(), "big") >> padding


def _from_bits(bits: int, shape: tuple[int, int]) -> np.ndarray:
    size = shape[0] * shape[1]
    padding = -size % 8
    packed = np.frombuffer((bits << padding).to_bytes((size + padding) // 8, "big"), np.uint8)
    return np.unpackbits(packed, count=size).view(bool).reshape(shape)


def _cross_step(bits: int, width: int, masks: tuple[int, int, int], grow: bool) -> int:
    """One binary dilation (grow) or erosion by the 4-neighbour cross, nothing beyond
    the edges (scipy.ndimage's binary_dilation / binary_erosion with their defaults),
    on a bitmap as one integer (`_to_bits`): its four neighbours are four shifts, the
    column masks keep a row's end from spilling into the next row."""
    everything, not_first, not_last = masks
    left = (bits >> 1) & not_first  # each pixel's left neighbour, moved onto it
    right = (bits << 1) & not_last
    above = bits >> width
    below = (bits << width) & everything
    if grow:
        return bits | left | right | above | below
    return bits & left & right & above & below


def normalise_strokes(bitmap: np.ndarray, coverage: float) -> np.ndarray:
    """Thicken or thin the strokes until the ink covers about `coverage` of the
    bitmap, as pen width varies between writers, pens and resolutions: the first of
    the bitmap, two thinnings and eight thickenings whose coverage is nearest."""
    target = coverage * bitmap.size  # in pixels: no float mean per candidate
    # The bitmap as one Python integer: a step is a few shifts and a count of bits,
    # where each of numpy's costs more than the work on 1,024 pixels.
    height, width = bitmap.shape
    masks = _bit_masks(height, width)
    start = _to_bits(bitmap)
    best, best_gap = start, abs(start.bit_count() - target)
    # Each thinning covers less, each thickening more: once a step passes the target,
    # the next ones are only farther from it.
    for grow, steps in ((False, 2), (True, 8)):
        current = start
        for _ in range(steps):
            count = current.bit_count()
            if (count <= target) if not grow else (count >= target):
                break
            current = _cross_step(current, width, masks, grow)
            count = current.bit_count()
            if not grow and count == 0:
                break
            if abs(count - target) < best_gap:
                best, best_gap = current, abs(count - target)
    return bitmap if best is start else _from_bits(best, bitmap.shape)


@lru_cache(maxsize=8)
def _block_sums_matrix(cells: int, block: int) -> np.ndarray:
    """cells x (cells * block): row i adds the i-th run of `block` pixels."""
    matrix = np.kron(np.eye(cells), np.ones((1, block)))
    matrix.flags.writeable = False  # shared between calls
    return matrix


def blocks_to_grid(bitmap: np.ndarray, fmt: ImageFormat) -> np.ndarray:
    """Count ink per block, as the data set's cells do, scaled to [0, 1]."""
    # Two small matrix products: numpy's sum over two axes of a 32x32 bitmap costs
    # ten times more.
    counts = _block_sums_matrix(fmt.height, fmt.block) @ bitmap
    counts = counts @ _block_sums_matrix(fmt.width, fmt.block).T
    return np.round(counts / fmt.block**2 * fmt.levels) / fmt.levels


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
    strokes = ink_mask(to_grayscale(image))
    if not strokes.size:
        return np.zeros(fmt.shape)
    bitmap = _fit_in_bitmap(strokes, fmt)
    if fmt.ink_coverage is not None:
        bitmap = normalise_strokes(bitmap, fmt.ink_coverage)
    return blocks_to_grid(bitmap, fmt)


def bytes_to_format(
    data: bytes, fmt: ImageFormat = DIGITS_FORMAT, *, max_bytes: int, max_pixels: int
) -> np.ndarray:
    image = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels, grayscale=True)
    return to_format(image, fmt)


def grid_to_png(grid: np.ndarray) -> bytes:
    """A grid as a PNG in the data set's own format (grayscale, white ink on black)."""
    buffer = io.BytesIO()
    Image.fromarray(native_to_pixels(grid)).save(buffer, format="PNG")
    return buffer.getvalue()
