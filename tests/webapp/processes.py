"""Real processes for the web app's end-to-end tests: the serving API under uvicorn
and the page under `streamlit run`, each on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from tests.webapp.conftest import APP, REPO_ROOT, free_port

SERVING_DIR = REPO_ROOT / "serving"


class Process:
    """A child in its own process group, its output in a log file; stop() ends the group."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.args = args
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_healthy(self, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.args[:4]} exited:\n{self.output()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{url} did not answer within {timeout}s:\n{self.output()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self._out.close()


@contextlib.contextmanager
def serving_api(root: Path, logs: Path, **env: str) -> Iterator[str]:
    """`cd serving && uvicorn api:app` on the project copied at `root`; yields its URL."""
    port = free_port()
    process = Process(
        [sys.executable, "-m", "uvicorn", "api:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=SERVING_DIR,
        env={
            **os.environ,
            "DATA_DIR": str(root / "data"),
            "ARTIFACTS_DIR": str(root / "artifacts"),
            **env,
        },
        log=logs / "serving.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_healthy(f"{url}/health")
        yield url
    finally:
        process.stop()


@contextlib.contextmanager
def webapp(serving_url: str, samples_dir: Path, logs: Path) -> Iterator[str]:
    """`streamlit run webapp/api.py` pointed at `serving_url`; yields its URL."""
    port = free_port()
    process = Process(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            f"--server.port={port}",
            "--server.address=127.0.0.1",
            "--server.headless=true",
            "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false",
            "--client.toolbarMode=minimal",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "SERVING_URL": serving_url, "SAMPLES_DIR": str(samples_dir)},
        log=logs / "webapp.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_healthy(f"{url}/_stcore/health")
        yield url
    finally:
        process.stop()
