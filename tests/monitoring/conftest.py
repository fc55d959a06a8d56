"""Servers shared by the monitoring tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.monitoring.servers import REPO_ROOT, clean_env
from tests.support.servers import Process, uvicorn_server

ACCURACY_WINDOW = 10


@dataclass
class Server:
    base: str
    process: Process
    tmpdir: Path


def demo_env(tmpdir: Path, **extra: str) -> dict[str, str]:
    """A private temporary folder for the automatic multiprocess folder, and a small
    accuracy window."""
    return clean_env(
        TMPDIR=str(tmpdir),
        METRICS_ACCURACY_WINDOW=str(ACCURACY_WINDOW),
        **extra,
    )


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """tests/monitoring/demo_app.py under real uvicorn with two worker processes."""
    tmpdir = tmp_path_factory.mktemp("demo")
    with uvicorn_server(
        "tests.monitoring.demo_app:app",
        cwd=REPO_ROOT,
        env=demo_env(tmpdir),
        log=tmpdir / "uvicorn.log",
        workers=2,
    ) as (base, process):
        yield Server(base, process, tmpdir)
