"""Fixtures of the web app's tests: a contract server on a free port, a URL where
nothing listens, and small images. The web app's package, mlstack_webapp, is
installed (pip install -e ./webapp)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.support import free_port
from tests.support.photos import photo_project, photo_root  # noqa: F401  (fixtures)
from tests.support.tables import table_project, table_root  # noqa: F401  (fixtures)
from tests.webapp.contract_server import ContractServer, running

REPO_ROOT = Path(__file__).resolve().parents[2]
WEBAPP = REPO_ROOT / "webapp"
APP = WEBAPP / "api.py"


def digit_png(size: int = 64, text_offset: int = 0) -> bytes:
    """A dark stroke on white, like a photo of a digit (a rough 7)."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    w = max(2, size // 10)
    draw.line([(size * 0.2, size * 0.2), (size * 0.8, size * 0.2)], fill=0, width=w)
    draw.line([(size * 0.8, size * 0.2), (size * 0.4 + text_offset, size * 0.85)], fill=0, width=w)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def contract() -> Iterator[ContractServer]:
    with running(ContractServer()) as server:
        yield server


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"
