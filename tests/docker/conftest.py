"""A real Docker engine for the Docker tests, or a plain reason to skip them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("serving", "webapp", "reporting")


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@pytest.fixture(scope="session")
def docker_engine(request: pytest.FixtureRequest) -> str:
    """Start (or find) the engine and the python:3.11-slim base; returns the compose command.

    Skips, with the script's own words, when no engine can be had here; a base image that
    cannot be had on an engine that runs is a failure, not a skip.
    """
    engine = subprocess.run(
        ["bash", str(REPO_ROOT / "tools/docker-engine.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if engine.returncode != 0:
        reason = _tail(engine.stderr) or f"tools/docker-engine.sh exited {engine.returncode}"
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\nDocker tests skipped: {reason}")
        pytest.skip(f"no Docker engine: {reason}")
    base = subprocess.run(
        ["bash", str(REPO_ROOT / "tools/base-image.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert base.returncode == 0, f"tools/base-image.sh failed:\n{_tail(base.stderr, 20)}"
    return engine.stdout.strip()
