"""Helpers of the reliability suite: private project copies, real uvicorn servers,
checks of prod_data.csv line by line, and the figures each test measures."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from mlstack.prod_store import prod_columns
from mlstack.settings import PipelineSettings
from PIL import Image

from tests.conftest import REPO_ROOT
from tests.support.servers import UvicornServer
from tests.support.serving import serve, start_server  # noqa: F401  (serve: a fixture)

FIGURES_DIR = REPO_ROOT / "test-output" / "reliability"
PREDICTION_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def copy_project(trained_root: Path, dest: Path) -> PipelineSettings:
    """A private copy of the trained project (what the `project` fixture gives, for
    fixtures of a wider scope)."""
    shutil.copytree(trained_root, dest, symlinks=True)
    return PipelineSettings(project_root=dest)


@pytest.fixture(scope="module")
def module_project(
    trained_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> PipelineSettings:
    return copy_project(trained_root, tmp_path_factory.mktemp("reliability") / "project")


@pytest.fixture(scope="module")
def plain_server(module_project: PipelineSettings) -> Iterator[UvicornServer]:
    """One worker, no token; shared by the tests of a module (they only add rows)."""
    server = start_server(module_project, module_project.project_root.parent / "plain.log", k=1000)
    try:
        yield server
    finally:
        server.kill()


TOKEN = "reliability-token-0123456789"


@pytest.fixture(scope="module")
def token_server(
    trained_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UvicornServer]:
    """One worker with API_TOKEN set, on its own project copy."""
    settings = copy_project(trained_root, tmp_path_factory.mktemp("token") / "project")
    server = start_server(
        settings, settings.project_root.parent / "token.log", k=1000, API_TOKEN=TOKEN
    )
    server.settings = settings  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.kill()


def png(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True, **options)
    return buffer.getvalue()


# -- prod_data.csv -----------------------------------------------------------------------
def read_prod(path: Path) -> tuple[list[str], list[list[str]], bytes]:
    """(header, rows, raw bytes) of prod_data.csv."""
    raw = path.read_bytes() if path.exists() else b""
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    return (lines[0], lines[1:], raw) if lines else ([], [], raw)


def malformed_rows(path: Path, labels: set[str]) -> list[str]:
    """Every way prod_data.csv breaks the store's layout: a torn last line, a row of
    another width, a vector value that is not a finite number, an unknown label, a bad
    timestamp, version or prediction_id. Empty when the file is sound."""
    header, rows, raw = read_prod(path)
    if not raw:
        return []
    problems = []
    if not raw.endswith(b"\n"):
        problems.append(f"torn last line: {raw[-80:]!r}")
    n = len(header) - 5
    if header != prod_columns(n):
        problems.append(f"header {header[:3]}... is not the store's")
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            problems.append(f"line {number}: {len(row)} fields, expected {len(header)}")
            continue
        try:
            if not all(math.isfinite(float(v)) for v in row[:n]):
                problems.append(f"line {number}: a vector value is not finite")
            datetime.fromisoformat(row[n + 2])
            if int(row[n + 3]) < 1:
                problems.append(f"line {number}: model_version {row[n + 3]}")
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
        if row[n] not in labels or row[n + 1] not in labels:
            problems.append(f"line {number}: labels {row[n]!r}, {row[n + 1]!r}")
        if not PREDICTION_ID.match(row[-1]):
            problems.append(f"line {number}: prediction_id {row[-1]!r}")
    return problems


def prediction_ids(path: Path) -> list[str]:
    return [row[-1] for row in read_prod(path)[1]]


# -- figures -----------------------------------------------------------------------------
def record_figures(name: str, figures: dict) -> None:
    """Print a test's figures and keep them in test-output/reliability/<name>.json
    (docs/reliability.md quotes the last run)."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    (FIGURES_DIR / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\n{name}: {json.dumps(figures)}")
