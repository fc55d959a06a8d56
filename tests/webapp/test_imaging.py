"""The canvas drawing becomes an ordinary PNG file; previews of tiny images stay sharp."""

from __future__ import annotations

import io

import numpy as np
from mlstack_webapp.imaging import canvas_to_png, preview
from PIL import Image

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
    assert image.format == "PNG"
    gray = np.asarray(image.convert("L"))
    assert gray.shape == (280, 280)
    assert (gray[40:240, 130:150] == 0).all()
    assert (gray[:, :100] == 255).all()  # the transparent part is white, not black


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
