"""The one launcher of child processes for the tests: a `Process` in its own session
with its output in a log file, stopped with everything it started, and a
`UvicornServer` built on it (an app under real uvicorn on a free loopback port, which
can be killed and started again on the same log)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port nothing listens on right now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Call `check` until it returns something truthy (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError, KeyError, ValueError, IndexError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class Process:
    """A child process in its own session, with its output appended to a log file;
    stop() and kill() end the whole group (uvicorn's workers included)."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.args = args
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: killpg reaches its children too
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise AssertionError(
                f"{self.args[:4]} exited with {self.popen.returncode}:\n{self.output()[-4000:]}"
            )

    def wait_healthy(self, url: str, timeout: float = 120) -> None:
        """Until `url` answers 200; fails at once if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{url} did not answer within {timeout}s:\n{self.output()[-4000:]}")

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
        """Send `sig` to the whole group and wait; whatever is left gets SIGKILL."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # stragglers of the group
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._out.close()

    def stop(self) -> None:
        """SIGTERM (a graceful stop), SIGKILL after 15 seconds."""
        self.kill(signal.SIGTERM, timeout=15)


def uvicorn_args(app: str, port: int, workers: int = 1) -> list[str]:
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    return [*args, "--workers", str(workers)] if workers > 1 else args


@dataclass
class UvicornServer:
    """`uvicorn <app>` in `cwd`; start() picks a free port and waits for `health`."""

    app: str
    cwd: Path
    env: dict[str, str]
    log_path: Path
    workers: int = 1
    health: str = "/health"
    port: int = 0
    process: Process | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self, timeout: float = 120) -> UvicornServer:
        self.port = free_port()
        self.process = Process(
            uvicorn_args(self.app, self.port, self.workers),
            cwd=self.cwd,
            env=self.env,
            log=self.log_path,
        )
        self.process.wait_healthy(self.url + self.health, timeout)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None:
            self.process.kill(sig)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def uvicorn_server(
    app: str,
    *,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    workers: int = 1,
    health: str = "/health",
) -> Iterator[tuple[str, Process]]:
    """A started UvicornServer, stopped (SIGTERM) on leaving; yields (URL, its Process)."""
    server = UvicornServer(app, cwd, env, log, workers, health)
    try:
        server.start()
        assert server.process is not None
        yield server.url, server.process
    finally:
        server.stop()
