"""`make run`: the three services from the virtual environment, healthy on their
ports, and one signal stops them all with no process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from mlstack.settings import PipelineSettings

from tests.support.servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (every child inherits it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_make_run_starts_three_services_and_one_signal_stops_them(
    project: PipelineSettings, tmp_path: Path
) -> None:
    ports = [free_port() for _ in range(3)]
    marker = f"MLSTACK_RUN_TEST={uuid.uuid4().hex}"
    env = {
        **os.environ,
        "DATA_DIR": str(project.data_dir),
        "ARTIFACTS_DIR": str(project.artifacts_dir),
        "SAMPLES_DIR": str(project.samples_dir),
        "WORKSPACE_DIR": str(tmp_path / "workspace"),
        marker.split("=")[0]: marker.split("=")[1],
    }
    runner = subprocess.Popen(
        [sys.executable, "scripts/run_local.py", "--ports", ",".join(map(str, ports))],
        cwd=ROOT,
        env=env,
        stdout=open(tmp_path / "run.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    try:
        urls = [
            f"http://127.0.0.1:{ports[0]}/health",
            f"http://127.0.0.1:{ports[1]}/_stcore/health",
            f"http://127.0.0.1:{ports[2]}/api/version",
        ]

        def all_up() -> bool:
            assert runner.poll() is None, (tmp_path / "run.log").read_text()
            try:
                return all(httpx.get(url, timeout=2).status_code == 200 for url in urls)
            except httpx.HTTPError:
                return False

        wait_until(all_up, 300, "the three services")
        assert len(processes_with(marker)) >= 5  # runner, API (+ workers), web app, UI
        runner.send_signal(signal.SIGINT)
        assert runner.wait(60) == 0, (tmp_path / "run.log").read_text()
        wait_until(lambda: not processes_with(marker), 15, "every process gone")
        for url in urls:
            with pytest.raises(httpx.ConnectError):
                httpx.get(url, timeout=2)
    finally:
        if runner.poll() is None:
            runner.kill()
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)
