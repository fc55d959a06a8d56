"""Fixtures of the serving tests: the app in process (TestClient, lifespan run) and
real uvicorn servers on loopback."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from mlstack.settings import PipelineSettings

from tests.conftest import REPO_ROOT
from tests.support import free_port

SERVING_DIR = REPO_ROOT / "serving"
if str(SERVING_DIR) not in sys.path:  # uvicorn runs `api:app` from serving/
    sys.path.insert(0, str(SERVING_DIR))

from api import create_app  # noqa: E402
from config import ServingSettings  # noqa: E402


def sample_images(settings: PipelineSettings) -> list[tuple[int, bytes]]:
    """(label, PNG bytes) of the exported held-out samples."""
    return [
        (int(path.name.split("_")[0]), path.read_bytes())
        for path in sorted(settings.samples_dir.glob("*.png"))
    ]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def client(project: PipelineSettings) -> Iterator[TestClient]:
    settings = ServingSettings(project_root=project.project_root, retrain_every_k=3)
    with TestClient(create_app(settings)) as test_client:
        test_client.settings = settings  # type: ignore[attr-defined]
        yield test_client


@dataclass
class Server:
    """A real `uvicorn api:app` process on loopback."""

    root: Path
    env: dict[str, str]
    workers: int
    log_path: Path
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> Server:
        self.port = free_port()
        command = [sys.executable, "-m", "uvicorn", "api:app", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        log = open(self.log_path, "a")  # noqa: SIM115 (kept open for the process' life)
        self.process = subprocess.Popen(
            command,
            cwd=SERVING_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: kill reaches the workers too
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"uvicorn did not become healthy:\n{self.log()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """serve(settings, workers=1, k=10, **env) -> a started Server; all killed at the end."""
    servers: list[Server] = []

    def start(settings: PipelineSettings, workers: int = 1, k: int = 10, **extra: str) -> Server:
        env = {
            **os.environ,
            "DATA_DIR": str(settings.data_dir),
            "ARTIFACTS_DIR": str(settings.artifacts_dir),
            "RETRAIN_EVERY_K": str(k),
            **extra,
        }
        server = Server(
            settings.project_root, env, workers, tmp_path / f"uvicorn-{len(servers)}.log"
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.kill()
