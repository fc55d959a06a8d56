"""The serving API in tests: in process (TestClient, lifespan run) and as the brief
runs it (`cd serving && uvicorn api:app`), plus the sample images it is fed.

The fixtures are imported by the conftest.py of the folders that use them."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlstack.serving.app import create_app
from mlstack.settings import PipelineSettings, ServingSettings

from tests.support.servers import UvicornServer

SERVING_DIR = Path(__file__).resolve().parents[2] / "serving"


def sample_images(settings: PipelineSettings) -> list[tuple[int, bytes]]:
    """(label, PNG bytes) of the exported held-out samples."""
    return [
        (int(path.name.split("_")[0]), path.read_bytes())
        for path in sorted(settings.samples_dir.glob("*.png"))
    ]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def serving_env(settings: PipelineSettings, k: int = 10, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATA_DIR": str(settings.data_dir),
        "ARTIFACTS_DIR": str(settings.artifacts_dir),
        "RETRAIN_EVERY_K": str(k),
        **extra,
    }


def serving_server(
    settings: PipelineSettings, log_path: Path, *, workers: int = 1, k: int = 10, **extra: str
) -> UvicornServer:
    """`uvicorn api:app --workers N` from serving/ on the project of `settings`, not started."""
    env = serving_env(settings, k, **extra)
    return UvicornServer("api:app", SERVING_DIR, env, log_path, workers)


def start_server(
    settings: PipelineSettings, log_path: Path, *, workers: int = 1, k: int = 10, **extra: str
) -> UvicornServer:
    """The same, started (healthy)."""
    return serving_server(settings, log_path, workers=workers, k=k, **extra).start()


@pytest.fixture
def client(project: PipelineSettings) -> Iterator[TestClient]:
    """The app in process on a private project copy, k = 3. The k-th /feedback waits up
    to 300 s for its retraining (not the default 60 s): a retraining, niced, on a
    machine busy with other tests can take longer, and the answer comes as soon as it
    is done."""
    settings = ServingSettings(
        project_root=project.project_root, retrain_every_k=3, retrain_wait_seconds=300
    )
    with TestClient(create_app(settings)) as test_client:
        test_client.settings = settings  # type: ignore[attr-defined]
        yield test_client


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., UvicornServer]]:
    """serve(settings, workers=1, k=10, **env) -> a started server; all killed at the end."""
    servers: list[UvicornServer] = []

    def start(
        settings: PipelineSettings, workers: int = 1, k: int = 10, **extra: str
    ) -> UvicornServer:
        log = tmp_path / f"uvicorn-{len(servers)}.log"
        servers.append(serving_server(settings, log, workers=workers, k=k, **extra))
        return servers[-1].start()

    yield start
    for server in servers:
        server.kill()
