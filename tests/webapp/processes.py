"""Real processes for the web app's end-to-end tests: the serving API under uvicorn
and the page under `streamlit run`, each on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support import Process
from tests.webapp.conftest import APP, REPO_ROOT, free_port

SERVING_DIR = REPO_ROOT / "serving"


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
def webapp(
    serving_url: str,
    samples_dir: Path | None,
    logs: Path,
    *,
    from_webapp: bool = False,
    **extra_env: str,
) -> Iterator[str]:
    """`streamlit run webapp/api.py` from the checkout (or `cd webapp && streamlit run
    api.py`) pointed at `serving_url`; yields its URL. No SAMPLES_DIR: the default."""
    port = free_port()
    env = {**os.environ, "SERVING_URL": serving_url, **extra_env}
    env.pop("SAMPLES_DIR", None)
    if samples_dir is not None:
        env["SAMPLES_DIR"] = str(samples_dir)
    process = Process(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            APP.name if from_webapp else str(APP),
            f"--server.port={port}",
            "--server.address=127.0.0.1",
            "--server.headless=true",
            "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false",
            "--client.toolbarMode=minimal",
        ],
        cwd=APP.parent if from_webapp else REPO_ROOT,
        env=env,
        log=logs / "webapp.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_healthy(f"{url}/_stcore/health")
        yield url
    finally:
        process.stop()
