"""Synthetic digit images: handwriting-like strokes drawn without any font, digits
printed with font files, and photo/scan/canvas-like renderings of an ink shape.

Two uses, one code path:
- training augmentation (`training_grids`): stroke digits in many styles
  (`synthetic_grids`) and digits printed with the tuning fonts only (`printed_grids`,
  DejaVu), brought to the data set's format by the very preprocessing uploads go
  through, so the classifier learns what a preprocessed real-world upload looks like.
  The package ships the result (synthetic_digits.npz), so training needs no font file
  and runs the same in a slim Docker image; only drawing the rows again does.
- real-world-like evaluation sets (scripts/make_realworld_set.py), which render the
  evaluation fonts, never used in training, with the same effects.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .preprocessing import DIGITS_FORMAT, ImageFormat, to_format

log = logging.getLogger(__name__)

FONT_ROOT = Path("/usr/share/fonts")
FONT_GROUPS = {
    # Used while tuning the preprocessing and augmentation, and printed into the
    # training rows (Debian: fonts-dejavu-core, fonts-dejavu-extra).
    "tuning": ["truetype/dejavu/DejaVu*.ttf"],
    # Never used while tuning nor in training: evaluation only.
    "eval": [
        "truetype/liberation/Liberation*.ttf",
        "truetype/freefont/Free*.ttf",
        "opentype/urw-base35/*.otf",
    ],
}
# Fonts whose digits are not digits (symbols, dingbats) or are not drawn at all.
NOT_DIGITS = ("StandardSymbolsPS", "D050000L", "DejaVuMathTeXGyre")
# The faces the shipped training rows were printed with (the tuning group's 21): the
# rows are drawn again, and cached, only where every one of them is installed.
TRAINING_FACES = tuple(
    f"DejaVu{family}{style}"
    for family, styles in (
        ("Sans", ("", "-Bold", "-Oblique", "-BoldOblique", "-ExtraLight")),
        ("SansCondensed", ("", "-Bold", "-Oblique", "-BoldOblique")),
        ("SansMono", ("", "-Bold", "-Oblique", "-BoldOblique")),
        ("Serif", ("", "-Bold", "-Italic", "-BoldItalic")),
        ("SerifCondensed", ("", "-Bold", "-Italic", "-BoldItalic")),
    )
    for style in styles
)


def find_fonts(spec: list[str]) -> list[Path]:
    """Font files of the named groups (FONT_GROUPS), or the given files, sorted."""
    fonts: list[Path] = []
    for item in spec:
        if item in FONT_GROUPS:
            for pattern in FONT_GROUPS[item]:
                fonts.extend(FONT_ROOT.glob(pattern))
        else:
            fonts.append(Path(item))
    return sorted(
        {font for font in fonts if font.is_file() and not font.name.startswith(NOT_DIGITS)}
    )


Stroke = list[tuple[float, float]]


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> Stroke:
    """Points on an ellipse arc; angles in degrees, 0 = right, 90 = down (screen)."""
    steps = max(4, int(abs(end - start) / 12))
    angles = np.radians(np.linspace(start, end, steps))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Each digit has a few ways of being written; a style is a list of pen strokes in a
# unit box (x right, y down). Variants cover handwriting and typographic shapes
# (a 1 with or without flag and base, a 7 with or without bar, open or closed 4...).
STYLES: dict[int, list[list[Stroke]]] = {
    0: [
        [_arc(0.5, 0.5, 0.5, 0.5, -90, 275)],
        [_arc(0.5, 0.5, 0.5, 0.5, -60, 300)],
    ],
    1: [
        [[(0.5, 0.0), (0.5, 1.0)]],
        [[(0.15, 0.3), (0.55, 0.0), (0.55, 1.0)]],
        [[(0.15, 0.3), (0.55, 0.0), (0.55, 1.0)], [(0.15, 1.0), (0.95, 1.0)]],
        [[(0.3, 0.15), (0.55, 0.0), (0.52, 1.0)]],
    ],
    2: [
        [[*_arc(0.5, 0.3, 0.45, 0.3, 200, 400), (0.0, 1.0), (1.0, 1.0)]],
        [[*_arc(0.5, 0.28, 0.45, 0.28, 190, 380), (0.05, 0.98), (0.3, 0.9), (1.0, 1.0)]],
        [[*_arc(0.5, 0.32, 0.48, 0.32, 180, 360), (0.9, 0.5), (0.0, 1.0), (1.0, 1.0)]],
    ],
    3: [
        [[*_arc(0.5, 0.26, 0.42, 0.26, 200, 450), *_arc(0.5, 0.73, 0.48, 0.27, -90, 160)]],
        [[(0.05, 0.0), (0.95, 0.0), (0.4, 0.4), *_arc(0.5, 0.7, 0.48, 0.3, -100, 160)]],
        [
            _arc(0.5, 0.26, 0.42, 0.26, 200, 450),
            _arc(0.5, 0.73, 0.48, 0.27, -90, 160),
        ],
    ],
    4: [
        [[(0.72, 0.0), (0.0, 0.68), (1.0, 0.68)], [(0.72, 0.0), (0.72, 1.0)]],
        [[(0.15, 0.0), (0.05, 0.6), (1.0, 0.6)], [(0.75, 0.15), (0.75, 1.0)]],
        [[(0.6, 0.0), (0.0, 0.7), (1.0, 0.7)], [(0.75, 0.35), (0.75, 1.0)]],
    ],
    5: [
        [[(0.9, 0.0), (0.15, 0.0), (0.12, 0.45), *_arc(0.48, 0.68, 0.45, 0.32, -140, 150)]],
        [
            [(0.15, 0.0), (0.12, 0.45), *_arc(0.48, 0.68, 0.45, 0.32, -140, 150)],
            [(0.15, 0.0), (0.95, 0.0)],
        ],
    ],
    6: [
        [[*_arc(0.55, 0.55, 0.5, 0.55, -60, -200), *_arc(0.5, 0.72, 0.42, 0.28, 160, -180)]],
        [[(0.8, 0.0), *_arc(0.5, 0.7, 0.45, 0.3, 200, -150)]],
    ],
    7: [
        [[(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)]],
        [[(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)], [(0.3, 0.5), (0.85, 0.5)]],
        [[(0.0, 0.18), (0.0, 0.0), (1.0, 0.0), (0.45, 1.0)]],
    ],
    8: [
        [_arc(0.5, 0.25, 0.38, 0.25, 0, 360), _arc(0.5, 0.73, 0.48, 0.27, -90, 270)],
        [
            [
                *_arc(0.5, 0.25, 0.4, 0.25, -20, -270),
                *_arc(0.5, 0.73, 0.48, 0.27, -90, 270),
                *_arc(0.5, 0.25, 0.4, 0.25, 90, -20),
            ]
        ],
    ],
    9: [
        [_arc(0.5, 0.3, 0.45, 0.3, 0, 360), [(0.95, 0.3), (0.9, 1.0)]],
        [[*_arc(0.5, 0.3, 0.45, 0.3, -10, -370), (0.93, 0.7), *_arc(0.55, 0.7, 0.38, 0.3, 0, 110)]],
        [_arc(0.5, 0.3, 0.45, 0.3, 0, 360), [(0.95, 0.3), (0.6, 1.0)]],
    ],
}


def stroke_ink(label: int, rng: np.random.Generator, height: int = 96) -> np.ndarray:
    """A handwriting-like digit: a random style of `label`, slanted, rotated,
    stretched and jittered, drawn with a random pen width. Ink in [0, 1]."""
    strokes = STYLES[label][rng.integers(len(STYLES[label]))]
    aspect = rng.uniform(0.45, 0.9)  # width / height
    slant = rng.uniform(-0.15, 0.4)
    angle = math.radians(rng.normal(0, 6))
    # Smooth wobble: a low-frequency displacement field, the same for every stroke.
    waves = rng.normal(0, 0.035, size=(2, 2)), rng.uniform(0, 2 * math.pi, size=(2, 2))
    freqs = rng.uniform(1.0, 3.0, size=(2, 2))

    def place(x: float, y: float) -> tuple[float, float]:
        dx = sum(waves[0][0, k] * math.sin(freqs[0, k] * 3 * y + waves[1][0, k]) for k in range(2))
        dy = sum(waves[0][1, k] * math.sin(freqs[1, k] * 3 * x + waves[1][1, k]) for k in range(2))
        x, y = (x + dx - 0.5) * aspect + slant * (0.5 - y), y + dy - 0.5
        return (
            x * math.cos(angle) - y * math.sin(angle),
            x * math.sin(angle) + y * math.cos(angle),
        )

    lines = []
    for stroke in strokes:
        points = np.array([place(x, y) for x, y in stroke])
        points += rng.normal(0, 0.012, size=points.shape)
        lines.append(points)
    pen = rng.uniform(0.04, 0.17) * height
    margin = pen + 4
    every = np.vstack(lines)
    low, high = every.min(axis=0), every.max(axis=0)
    scale = (height - 2 * margin) / max(high[1] - low[1], 1e-3)
    width = int((high[0] - low[0]) * scale + 2 * margin) + 1
    canvas = Image.new("L", (max(width, int(2 * margin) + 1), height), 0)
    draw = ImageDraw.Draw(canvas)
    for points in lines:
        xy = [(margin + (x - low[0]) * scale, margin + (y - low[1]) * scale) for x, y in points]
        draw.line(xy, fill=255, width=max(1, round(pen)), joint="curve")
        for x, y in (xy[0], xy[-1]):  # round pen ends
            r = pen / 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def font_ink(
    label: int, font_path: Path, rng: np.random.Generator, height: int = 120
) -> np.ndarray:
    """A digit rendered with a font file, slightly rotated and sheared. Ink in [0, 1]."""
    font = ImageFont.truetype(str(font_path), size=height)
    canvas = Image.new("L", (height * 2, height * 2), 0)
    ImageDraw.Draw(canvas).text((height, height), str(label), fill=255, font=font, anchor="mm")
    shear = rng.uniform(-0.15, 0.2)
    canvas = canvas.transform(
        canvas.size,
        Image.Transform.AFFINE,
        (1, shear, -shear * height, 0, 1, 0),
        resample=Image.Resampling.BILINEAR,
    ).rotate(rng.normal(0, 5), resample=Image.Resampling.BILINEAR)
    if rng.random() < 0.3:  # a heavier or lighter print
        size = 3 if rng.random() < 0.5 else 5
        filt = ImageFilter.MaxFilter if rng.random() < 0.7 else ImageFilter.MinFilter
        canvas = canvas.filter(filt(size))
    ink = np.asarray(canvas, dtype=np.float32) / 255.0
    return _tight(ink) if ink.max() > 0 else ink


def _tight(ink: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(ink.max(axis=1) > 0.1)
    cols = np.flatnonzero(ink.max(axis=0) > 0.1)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _contrasting_colours(rng: np.random.Generator, dark_ink: bool) -> tuple[np.ndarray, np.ndarray]:
    """Background and ink RGB colours with a clear difference in lightness."""
    while True:
        background = rng.uniform(150, 255, 3) if dark_ink else rng.uniform(0, 90, 3)
        if rng.random() < 0.5:  # paper: a near-grey tint
            background = np.full(3, background.mean()) + rng.normal(0, 8, 3)
        ink = rng.uniform(0, 110, 3) if dark_ink else rng.uniform(170, 255, 3)
        if abs(background.mean() - ink.mean()) > 80:
            return np.clip(background, 0, 255), np.clip(ink, 0, 255)


def compose(
    ink: np.ndarray, rng: np.random.Generator, kind: str, max_side: int = 900
) -> Image.Image:
    """Put an ink shape on a picture as a user would send it.

    kind: "photo" (coloured paper, uneven light, noise, blur, off-centre, any size),
    "scan" (dark on light, mild noise), "canvas" (thick strokes, black on white or
    white on black, as drawing widgets give)."""
    ink_h, ink_w = ink.shape
    if kind == "canvas":
        side = min(max_side, int(rng.choice([200, 280, 400])))
        fill = rng.uniform(0.45, 0.85)
        dark_ink = rng.random() < 0.7
        background = np.full(3, 255.0 if dark_ink else 0.0)
        colour = np.full(3, 0.0 if dark_ink else 255.0)
        out_w = out_h = side
    else:
        out_h = int(rng.integers(48, max_side))
        out_w = min(max_side, int(out_h * rng.uniform(0.7, 1.6)))
        fill = rng.uniform(0.3, 0.85)
        dark_ink = kind == "scan" or rng.random() < 0.85
        background, colour = _contrasting_colours(rng, dark_ink)
    scale = fill * out_h / ink_h
    new_w, new_h = max(1, round(ink_w * scale)), max(1, round(ink_h * scale))
    if new_w > out_w * 0.95:  # a wide shape: fit the width instead
        shrink = out_w * 0.95 / new_w
        new_w, new_h = max(1, round(new_w * shrink)), max(1, round(new_h * shrink))
    shape = np.asarray(
        Image.fromarray((ink * 255).astype(np.uint8)).resize(
            (new_w, new_h), Image.Resampling.LANCZOS
        ),
        dtype=np.float32,
    )
    alpha = np.zeros((out_h, out_w), dtype=np.float32)
    top = int(rng.integers(0, out_h - new_h + 1))
    left = int(rng.integers(0, out_w - new_w + 1))
    alpha[top : top + new_h, left : left + new_w] = np.clip(shape / 255.0, 0, 1)
    if kind != "canvas":
        alpha *= rng.uniform(0.75, 1.0)  # ink that is not fully saturated
    background, colour = background.astype(np.float32), colour.astype(np.float32)
    picture = background * (1 - alpha[..., None]) + colour * alpha[..., None]
    if kind == "photo":
        # Uneven light: a linear gradient across the picture, and a vignette.
        yy, xx = np.ogrid[0:out_h, 0:out_w]
        direction = rng.uniform(0, 2 * math.pi)
        ramp = (np.cos(direction) * xx / out_w + np.sin(direction) * yy / out_h) - 0.5
        light = (1 + rng.uniform(0.0, 0.45) * ramp).astype(np.float32)
        vignette = ((xx / out_w - 0.5) ** 2 + (yy / out_h - 0.5) ** 2) * rng.uniform(0, 0.5)
        picture = picture * (light - vignette)[..., None]
        picture += rng.normal(0, rng.uniform(2, 14), picture.shape).astype(np.float32)
    elif kind == "scan":
        picture += rng.normal(0, rng.uniform(0, 6), picture.shape).astype(np.float32)
    image = Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8), "RGB")
    if kind == "photo" and rng.random() < 0.6:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5) * out_h / 300))
    return image


def encode(image: Image.Image, rng: np.random.Generator, kind: str) -> tuple[bytes, str]:
    """Image file bytes as a user would upload them: JPEG (varied quality) for
    photos and scans, PNG for canvas drawings and some scans."""
    buffer = io.BytesIO()
    if kind == "canvas" or (kind == "scan" and rng.random() < 0.3):
        image.save(buffer, format="PNG")
        return buffer.getvalue(), "png"
    image.save(buffer, format="JPEG", quality=int(rng.integers(30, 96)))
    return buffer.getvalue(), "jpg"


def synthetic_grids(
    per_label: int,
    seed: int = 0,
    fmt: ImageFormat = DIGITS_FORMAT,
    labels: range = range(10),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stroke digits (no font needed) in canvas, scan and photo renderings, each
    brought to `fmt` by the upload preprocessing: extra training rows."""
    total = per_label * len(labels)
    if not total:
        return np.empty((0, *fmt.shape)), np.empty(0, dtype=int)
    rng = np.random.default_rng(seed)
    kinds = ("canvas", "scan", "photo")
    grids, targets = [], []
    for i in range(total):
        label = labels[i % len(labels)]
        kind = kinds[i % len(kinds)]
        image = compose(stroke_ink(label, rng), rng, kind, max_side=320)
        grids.append(to_format(image, fmt))
        targets.append(label)
        if progress is not None and ((i + 1) % 500 == 0 or i + 1 == total):
            progress(i + 1, total)
    return np.stack(grids), np.array(targets)


def printed_grids(
    per_label: int,
    seed: int = 0,
    fmt: ImageFormat = DIGITS_FORMAT,
    fonts: list[Path] | None = None,
    labels: range = range(10),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Digits printed with the tuning fonts (DejaVu; never an evaluation font), every
    face in turn, as photos and scans, each brought to `fmt` by the upload
    preprocessing: extra training rows for typeset digits (serif and bold 5s, 1s with
    a base, 0s and 8s of every weight), which strokes alone do not teach."""
    fonts = find_fonts(["tuning"]) if fonts is None else fonts
    if not fonts or not per_label:
        return np.empty((0, *fmt.shape)), np.empty(0, dtype=int)
    # Their own stream: the stroke rows stay what they were.
    rng = np.random.default_rng([seed, 1])
    kinds = ("photo", "scan")
    grids, targets = [], []
    total = per_label * len(labels)
    for i in range(total):
        n, label = divmod(i, len(labels))
        font = fonts[(n + label) % len(fonts)]
        kind = kinds[(n // len(fonts) + label) % len(kinds)]
        image = compose(font_ink(label, font, rng), rng, kind, max_side=320)
        grids.append(to_format(image, fmt))
        targets.append(label)
        if progress is not None and ((i + 1) % 500 == 0 or i + 1 == total):
            progress(i + 1, total)
    return np.stack(grids), np.array(targets)


CACHE_PATH = Path(__file__).with_name("synthetic_digits.npz")


def _fingerprint(per_label: int, printed_per_label: int, seed: int, fmt: ImageFormat) -> str:
    """Changes whenever the synthetic rows would: the code that draws and
    preprocesses them, the arguments and the faces printed with."""
    digest = hashlib.sha256(repr((per_label, printed_per_label, seed, fmt)).encode())
    if printed_per_label:
        digest.update(repr(TRAINING_FACES).encode())
    for module in (Path(__file__), Path(__file__).with_name("preprocessing.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()


def training_fonts() -> list[Path] | None:
    """The installed tuning fonts when they are every face of TRAINING_FACES (the
    faces the fingerprint promises), else None."""
    fonts = find_fonts(["tuning"])
    return fonts if sorted(font.stem for font in fonts) == sorted(TRAINING_FACES) else None


def training_grids(
    per_label: int,
    seed: int = 0,
    fmt: ImageFormat = DIGITS_FORMAT,
    cache: Path | None = CACHE_PATH,
    printed_per_label: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """`synthetic_grids` then `printed_grids`, read from the cache file shipped with
    the package when it was made by this very code with these arguments (a minute of
    work and the font files saved on every first training); generated, and cached
    when the folder is writable and every training face is installed, otherwise."""
    fingerprint = _fingerprint(per_label, printed_per_label, seed, fmt)
    if cache is not None and cache.exists():
        with np.load(cache) as stored:
            if str(stored["fingerprint"]) == fingerprint:
                return stored["cells"] / fmt.levels, stored["labels"]
        log.info("synthetic training rows in %s are out of date: generating them", cache)

    def report(done: int, total: int) -> None:
        log.info("synthetic training images: %d/%d", done, total)

    grids, labels = synthetic_grids(per_label, seed, fmt, progress=report)
    fonts = training_fonts() if printed_per_label else []
    if fonts is None:
        # A clean install without the fonts: train on the strokes, and leave the
        # cache alone (it would claim printed rows it does not hold).
        log.warning(
            "the DejaVu fonts (Debian: fonts-dejavu-core fonts-dejavu-extra) are not all "
            "installed: the %d printed training rows are left out",
            printed_per_label * 10,
        )
        return grids, labels
    printed, printed_labels = printed_grids(printed_per_label, seed, fmt, fonts, progress=report)
    grids = np.concatenate([grids, printed])
    labels = np.concatenate([labels, printed_labels])
    if cache is not None:
        cells = np.round(grids * fmt.levels).astype(np.uint16)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp.npz")
        try:
            np.savez_compressed(tmp, cells=cells, labels=labels, fingerprint=fingerprint)
            os.replace(tmp, cache)
        except OSError as exc:  # a read-only install: generate again next time
            log.info("could not cache synthetic rows in %s: %s", cache, exc)
            tmp.unlink(missing_ok=True)
    return grids, labels
