"""Storage benchmark: the file backend against PostgreSQL, one and three replicas, in one
run on loopback (not a test).

    python benchmarks/storage.py                          # about two minutes
    python benchmarks/storage.py --duration 5 --threads 8
    python benchmarks/storage.py --database-url postgresql://user@host/db   # a server of yours

For each of four set-ups, the same uvicorn command (one worker per replica, no
retraining: RETRAIN_EVERY_K is out of reach) and the same load:
  - files, 1 replica: prod_data.csv under its file lock, artifacts/current;
  - files, 3 replicas: three servers on the same folders (one machine, one disk);
  - database, 1 replica, and database, 3 replicas, each with its own empty folders.
Load: `--threads` client threads (httpx) spread round-robin over the replicas, first
POST /predict, then POST /feedback (each answer 200 is a row stored: in the file with an
fsync, in the table with a commit), `--duration` seconds each. The client threads share
the machine's cores with the servers (and PostgreSQL): compare figures within one run.
Without --database-url a throw-away PostgreSQL is started (initdb + pg_ctl from
/usr/lib/postgresql/*/bin, as the `postgres` user when run as root).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from mlstack.pipeline import bootstrap
from mlstack.settings import PipelineSettings
from mlstack.stores import copy_deployment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL server on a free port for the run; yields its URL."""
    root = Path(tempfile.mkdtemp(prefix="mlstack-bench-pg-"))  # the postgres user's own
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    bindir = found[-1].parent if found else Path(shutil.which("initdb") or "initdb").parent
    data, port = root / "pgdata", free_port()
    prefix = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        root.chmod(0o755)
        prefix = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        subprocess.run(
            [*prefix, str(bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            timeout=120,
        )

    run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres")
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200"
    run("pg_ctl", "-D", str(data), "-o", options, "-l", str(data / "log"), "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(url: str) -> str:
    """A new database on the server of `url`; returns its URL."""
    import sqlalchemy as sa

    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"


class Replica:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "mlstack.serving.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"a replica exited: see {self._log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"no /health after {timeout}s: see {self._log.name}")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


def load(urls: list[str], route: str, bodies: list[dict], threads: int, seconds: float) -> float:
    """Answers 200 per second, `threads` clients round-robin over `urls`."""
    done = [0] * threads
    errors: list[str] = []
    stop_at = time.monotonic() + seconds

    def client(i: int) -> None:
        n = i
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < stop_at:
                body = dict(bodies[n % len(bodies)])
                if route == "/feedback":
                    body["prediction_id"] = uuid.uuid4().hex
                answer = http.post(urls[n % len(urls)] + route, json=body)
                if answer.status_code == 200:
                    done[i] += 1
                elif len(errors) < 5:
                    errors.append(f"{answer.status_code} {answer.text[:200]}")
                n += 1

    started = time.monotonic()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        print(f"  {route}: errors {errors}", file=sys.stderr)
    return sum(done) / (time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--database-url", help="a PostgreSQL server to use (a database is made)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mlstack-storage-bench-"))
    try:
        print("training the model once ...", file=sys.stderr)
        trained = PipelineSettings(project_root=root / "trained")
        bootstrap(trained)
        samples = sorted(trained.samples_dir.glob("*.png"))[:20]
        images = [
            (int(p.name.split("_")[0]), base64.b64encode(p.read_bytes()).decode()) for p in samples
        ]
        feedback = [{"image": img, "prediction": label, "target": label} for label, img in images]
        predict = [{"image": img} for _, img in images]
        base_env = {**os.environ, "RETRAIN_EVERY_K": "100000000", "DB_POOL_SIZE": "8"}
        rows = []
        with contextlib.ExitStack() as stack:
            server = args.database_url or stack.enter_context(throwaway_postgres())
            for backend in ("files", "database"):
                for count in (1, 3):
                    setup = root / f"{backend}-{count}"
                    envs = []
                    if backend == "files":  # one machine: the replicas share the folders
                        shutil.copytree(trained.project_root, setup / "shared", symlinks=True)
                        envs = [
                            {
                                "DATA_DIR": str(setup / "shared" / "data"),
                                "ARTIFACTS_DIR": str(setup / "shared" / "artifacts"),
                            }
                        ] * count
                    else:
                        url = fresh_database(server)
                        copy_deployment(
                            PipelineSettings(project_root=trained.project_root, database_url=url)
                        )
                        envs = [
                            {
                                "DATA_DIR": str(setup / f"r{i}" / "data"),
                                "ARTIFACTS_DIR": str(setup / f"r{i}" / "artifacts"),
                                "DATABASE_URL": url,
                            }
                            for i in range(count)
                        ]
                    setup.mkdir(parents=True, exist_ok=True)
                    replicas = [
                        Replica({**base_env, **env}, setup / f"uvicorn-{i}.log")
                        for i, env in enumerate(envs)
                    ]
                    try:
                        for replica in replicas:
                            replica.wait()
                        urls = [r.url for r in replicas]
                        load(urls, "/predict", predict, args.threads, 1.0)  # warm-up
                        pr = load(urls, "/predict", predict, args.threads, args.duration)
                        fb = load(urls, "/feedback", feedback, args.threads, args.duration)
                    finally:
                        for replica in replicas:
                            replica.stop()
                    rows.append((backend, count, fb, pr))
                    print(
                        f"  {backend}, {count} replica(s): /feedback {fb:.0f} rows/s, "
                        f"/predict {pr:.0f} req/s",
                        file=sys.stderr,
                    )
        print(
            f"\n{os.cpu_count()} cores, {args.threads} client threads (httpx), "
            f"{args.duration:g}s per figure, one uvicorn worker per replica\n"
        )
        print("| backend | replicas | /feedback rows/s | /predict requests/s |")
        print("|---|---|---|---|")
        for backend, count, fb, pr in rows:
            print(f"| {backend} | {count} | {fb:.0f} | {pr:.0f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
