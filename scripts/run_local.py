"""The three services from the project's virtual environment, without Docker (`make run`).

    python scripts/run_local.py            # API :8080, web app :8081, reports :8082

The serving API starts first (on a fresh clone it builds ref_data.csv and trains,
as in Docker); the web app and the reporting UI start once it is healthy. The report
is brought up to date every REPORT_EVERY_SECONDS (60 here when unset). One Ctrl-C
(or SIGTERM) stops all of them, and their children, and nothing is left running.
Settings are the environment variables of the README; each service reads its own.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (our own URL)
            return answer.status == 200
    except OSError:
        return False


class Services:
    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        print(f"==> {name}: {' '.join(args)}", flush=True)
        # Its own process group, so that stopping it stops what it started too.
        process = subprocess.Popen(args, cwd=cwd, env=env, start_new_session=True)
        self.processes.append((name, process))

    def wait_healthy(self, name: str, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not healthy(url):
            self.check()
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not answer {url} within {timeout:.0f} s")
            time.sleep(0.5)
        print(f"==> {name} is up: {url}", flush=True)

    def check(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise SystemExit(f"{name} stopped (exit code {process.returncode})")

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--ports", default="8080,8081,8082", help="API, web app, reports")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of the API")
    args = parser.parse_args()
    api_port, web_port, report_port = args.ports.split(",")
    env = {**os.environ}
    env.setdefault("SERVING_URL", f"http://127.0.0.1:{api_port}")
    env.setdefault("REPORT_EVERY_SECONDS", "60")
    workspace = env.setdefault("WORKSPACE_DIR", str(ROOT / "reporting" / "workspace"))

    services = Services()

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C (SIGINT) is handled explicitly: a shell starts background jobs with SIGINT
    # ignored, and Python keeps an ignored SIGINT ignored, so `make run &`, nohup or a CI
    # runner would otherwise leave the three services deaf to it.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        services.start(
            "serving API",
            [
                str(BIN / "uvicorn"),
                "api:app",
                "--host",
                args.host,
                "--port",
                api_port,
                "--workers",
                str(args.workers),
            ],
            ROOT / "serving",
            env,
        )
        services.wait_healthy("serving API", f"http://127.0.0.1:{api_port}/health", 600)
        services.start(
            "web app",
            [
                str(BIN / "streamlit"),
                "run",
                "api.py",
                "--server.port",
                web_port,
                "--server.address",
                args.host,
                "--server.headless",
                "true",
            ],
            ROOT / "webapp",
            env,
        )
        subprocess.run([sys.executable, "project.py"], cwd=ROOT / "reporting", env=env, check=False)
        services.start(
            "report updates",
            [sys.executable, "project.py", "--every", "--skip-first"],
            ROOT / "reporting",
            env,
        )
        services.start(
            "reports",
            [
                str(BIN / "evidently"),
                "ui",
                "--workspace",
                workspace,
                "--host",
                args.host,
                "--port",
                report_port,
            ],
            ROOT / "reporting",
            env,
        )
        services.wait_healthy("web app", f"http://127.0.0.1:{web_port}/_stcore/health", 120)
        services.wait_healthy("reports", f"http://127.0.0.1:{report_port}/api/version", 120)
        print(
            f"\nAPI http://127.0.0.1:{api_port}/docs · web app http://127.0.0.1:{web_port} · "
            f"reports http://127.0.0.1:{report_port}\nCtrl-C stops them all.",
            flush=True,
        )
        while True:
            services.check()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\n==> stopping", flush=True)
    finally:
        services.stop()


if __name__ == "__main__":
    main()
