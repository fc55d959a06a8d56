"""The canvas drawing becomes an ordinary PNG file; previews of tiny images stay sharp."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from mlstack.artifacts import ArtifactStore
from mlstack.preprocessing import bytes_to_format
from mlstack_webapp.imaging import canvas_to_png, preview
from PIL import Image

from tests.scripts import preprocessing_reference as ref
from tests.webapp.conftest import digit_png


def canvas(background: tuple[int, int, int, int]) -> np.ndarray:
    return np.tile(np.array(background, dtype=np.uint8), (280, 280, 1))


def test_an_empty_canvas_is_no_image() -> None:
    assert canvas_to_png(None) is None
    assert canvas_to_png(canvas((255, 255, 255, 255))) is None
    assert canvas_to_png(canvas((0, 0, 0, 0))) is None  # transparent, nothing drawn
    stray = canvas((255, 255, 255, 255))
    stray[100:102, 100:102] = (0, 0, 0, 255)  # a click, not a digit
    assert canvas_to_png(stray) is None


def test_a_drawing_becomes_black_ink_on_white() -> None:
    rgba = canvas((0, 0, 0, 0))  # a transparent background with a black stroke
    rgba[40:240, 130:150] = (0, 0, 0, 255)
    data = canvas_to_png(rgba)
    assert data is not None
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.mode) == ("PNG", "L")  # grayscale: a cheaper decode
    gray = np.asarray(image)
    assert gray.shape == (280, 280)
    assert (gray[40:240, 130:150] == 0).all()
    assert (gray[:, :100] == 255).all()  # the transparent part is white, not black


def stroke_canvases() -> Iterator[tuple[str, bytes]]:
    """The real-world set's canvas drawings (scripts/make_realworld_set.py, kind
    stroke-canvas: RGB PNGs, black on white or white on black, 200 to 400 px) and the
    reference canvas drawings (280x280, RGB and RGBA)."""
    maker = ref._make_realworld_set()
    with tempfile.TemporaryDirectory() as folder:
        rows = maker.generate(Path(folder), 20, 2024, [], ("stroke-canvas",), progress=False)
        for row in rows:
            yield row["file"], (Path(folder) / row["file"]).read_bytes()
    for name, _, data in ref.canvas_drawings():
        yield name, data


def as_sent_before(rgba: np.ndarray) -> bytes:
    """What the web app sent before it sent grayscale: the drawing flattened on white,
    as an RGB PNG."""
    image = Image.fromarray(rgba, "RGBA" if rgba.shape[2] == 4 else "RGB")
    flat = Image.new("RGB", image.size, "white")
    flat.paste(image, mask=image.getchannel("A") if image.mode == "RGBA" else None)
    out = io.BytesIO()
    flat.save(out, format="PNG")
    return out.getvalue()


def test_a_grayscale_drawing_gets_the_grid_and_prediction_of_the_rgb_one(
    trained_root: Path,
) -> None:
    # The API turns an RGB upload into 8-bit grayscale with Pillow's own conversion,
    # the one the web app now makes: the same pixels, so the same grid, bit for bit.
    limits = {"max_bytes": 10 << 20, "max_pixels": 40_000_000}
    before, now = [], []
    for name, data in stroke_canvases():
        pixels = np.asarray(Image.open(io.BytesIO(data)))
        sent = canvas_to_png(pixels)
        assert sent is not None, name
        before.append(bytes_to_format(as_sent_before(pixels), **limits))
        now.append(bytes_to_format(sent, **limits))
    assert len(now) == 401
    np.testing.assert_array_equal(np.stack(now), np.stack(before))
    artifacts = ArtifactStore(trained_root / "artifacts").load()
    predicted = [
        artifacts.classifier.predict(artifacts.embedding.transform(np.stack(grids)))
        for grids in (before, now)
    ]
    np.testing.assert_array_equal(predicted[1], predicted[0])


def test_tiny_images_are_enlarged_pixel_for_pixel() -> None:
    grid = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4, "L")
    out = io.BytesIO()
    grid.save(out, format="PNG")
    shown = preview(out.getvalue())
    assert shown is not None
    assert shown.size == (160, 160)
    assert np.asarray(shown)[::20, ::20].tolist() == np.asarray(grid).tolist()
    assert preview(digit_png(400)).size == (400, 400)  # large enough: unchanged
    assert preview(b"not an image") is None
