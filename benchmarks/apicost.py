"""The API's own cost per request, in process (not a test).

    python benchmarks/apicost.py                      # about a minute
    python benchmarks/apicost.py --baseline 7ddd438   # and that commit's code, same run
    python benchmarks/apicost.py --baseline 7ddd438 --instructions   # + 15 min: valgrind

The serving app and the serving benchmark's echo and classify apps
(benchmarks/serving.py) are called as ASGI apps, one request after the other, with no
server, socket or load generator: the CPU time per request is the apps' own, and the
machine's other work moves it far less than the staircase's figures under wrk. The
API's own cost is /predict's CPU time per request minus the classify app's, which
decodes, preprocesses, embeds and classifies the same 8x8 sample with the same model
and answers the same fields: what is left is the checks, the metrics middleware, the
model look-up, the ids and the response.

This machine's speed drifts (it is shared), so with `--baseline` the figure is also
compared with that commit's, measured in the same run: the commit's files are exported
(`git archive`), this script and serving.py are copied into its `scripts/` folder and
run there (`python apicost.py --measure`: Python looks in the script's own folder
first, so it imports that commit's mlstack, not the installed one), in turns with the
checkout's. The target, 40 us of server CPU where it was about 150 us, is printed both
as it was set and as that share of the baseline's cost.

Time on a busy machine still moves by tens of microseconds from run to run.
`--instructions` also counts the instructions per request under valgrind's callgrind
(Debian's `valgrind`), which the machine's load does not change: each app runs in two
processes that differ only by the number of requests measured, and the difference of
their totals is divided by it (the start, imports and warm-up cancel out), every process
with BLAS on one thread and the same hash seed (run_side). It leaves out the kernel's
share (a readlink and a getrandom per /predict request).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
OWN_TARGET_US = 40  # the API's own CPU per request
OWN_BEFORE_US = 150  # what it was when the target was set (README of that time)
APPS = ("echo", "classify", "predict")


async def start(app) -> tuple[dict, asyncio.Task, asyncio.Queue]:
    """Run the app's lifespan up to its startup, as a server does; its state dict is
    what each request's scope then carries."""
    state: dict = {}
    inbox: asyncio.Queue = asyncio.Queue()
    started = asyncio.get_running_loop().create_future()

    async def send(message: dict) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set_result(None)
        elif message["type"] == "lifespan.startup.failed":
            started.set_exception(RuntimeError(message.get("message", "startup failed")))

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app(scope, inbox.get, send))
    await started
    return state, task, inbox


async def stop(task: asyncio.Task, inbox: asyncio.Queue) -> None:
    await inbox.put({"type": "lifespan.shutdown"})
    await task


def request_scope(body: bytes, state: dict) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": dict(state),
    }


async def post(app, body: bytes, state: dict) -> int:
    """One POST /predict through the app; its status."""
    delivered = False
    status = 0

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}  # asked only after the answer

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(request_scope(body, state), receive, send)
    return status


async def measure_apps(
    root: Path, rounds: int, requests: int, names: tuple[str, ...] = APPS
) -> dict[str, list[float]]:
    """CPU microseconds per request of each app, one figure per round; the apps take
    turns within each round."""
    from mlstack.serving.app import create_app

    import serving  # the serving benchmark beside this file: the echo and classify apps

    sample = sorted((root / "data" / "samples").glob("*.png"))[0].read_bytes()
    body = json.dumps({"image": base64.b64encode(sample).decode()}).encode()
    makers = {"echo": lambda: serving.echo_app, "classify": lambda: serving.classify_app}
    apps = {name: makers.get(name, create_app)() for name in names}
    started = {name: await start(app) for name, app in apps.items()}
    try:
        for name, app in apps.items():  # warm: first calls fill caches and lazy imports
            for _ in range(200):
                status = await post(app, body, started[name][0])
                assert status == 200, (name, status)
        figures: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(rounds):
            for name, app in apps.items():
                state = started[name][0]
                before = time.process_time()
                for _ in range(requests):
                    await post(app, body, state)
                figures[name].append((time.process_time() - before) / requests * 1e6)
    finally:
        for _, task, inbox in started.values():
            await stop(task, inbox)
    return figures


def measure(root: Path, rounds: int, requests: int, names: tuple[str, ...]) -> None:
    """The `--measure` side: make the project once (data set, model), print the figures
    as JSON."""
    os.environ.update(
        DATA_DIR=str(root / "data"),
        ARTIFACTS_DIR=str(root / "artifacts"),
        RETRAIN_EVERY_K="1000000000",
    )
    if not (root / "artifacts").exists():
        from mlstack.pipeline import bootstrap
        from mlstack.settings import PipelineSettings

        bootstrap(PipelineSettings(project_root=root))
    figures = asyncio.run(measure_apps(root, rounds, requests, names))
    print(json.dumps(figures))


def export_baseline(ref: str, dest: Path) -> Path:
    """The commit's package with this harness beside it; the folder to run it in."""
    archive = subprocess.run(
        ["git", "archive", ref, "scripts"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    folder = dest / "scripts"
    for name in ("apicost.py", "serving.py"):
        shutil.copy(REPO_ROOT / "benchmarks" / name, folder / name)
    return folder


def run_side(
    folder: Path, root: Path, rounds: int, requests: int, app: str | None = None
) -> subprocess.CompletedProcess:
    command = [sys.executable, "apicost.py", "--measure", str(root)]
    command += ["--rounds", str(rounds), "--requests", str(requests)]
    if app is not None:  # one app, under callgrind
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command]
        command += ["--apps", app]
    # BLAS on one thread from the start, as the API sets it at its start (the echo and
    # classify apps do not): OpenBLAS's own threads otherwise ran 29 to 33 million
    # instructions in a /predict process under callgrind, a different count each time,
    # and its count per request moved by 37,000 between runs (17,000 with one thread).
    # One hash seed for every process: with Python's random one, the dicts and sets are
    # laid out anew in each process, and /predict's count per request moved by 25,000
    # between two identical runs (1,423,705 and 1,398,492); with PYTHONHASHSEED=0 by 700.
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
    }
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{folder}: the measurement failed:\n{done.stderr[-3000:]}")
    return done


def instructions_per_request(folder: Path, root: Path, app: str) -> float:
    """Instructions per request of one app: two processes, 50 and 250 requests measured."""
    totals = []
    for requests in (50, 250):
        log = run_side(folder, root, 1, requests, app).stderr
        totals.append(int(re.search(r"Collected : (\d+)", log).group(1)))
    return (totals[1] - totals[0]) / 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a commit to measure in the same run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per turn")
    parser.add_argument("--requests", type=int, default=400, help="requests per app and round")
    parser.add_argument("--turns", type=int, default=3, help="turns of the two sides")
    parser.add_argument("--instructions", action="store_true", help="count under callgrind")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--apps", nargs="+", default=APPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        measure(args.measure, args.rounds, args.requests, tuple(args.apps))
        return

    scratch = Path(tempfile.mkdtemp(prefix="bench-apicost-"))
    sides = {"checkout": REPO_ROOT / "benchmarks"}
    if args.baseline:
        sides[args.baseline] = export_baseline(args.baseline, scratch)
    results: dict[str, dict[str, list[float]]] = {side: {a: [] for a in APPS} for side in sides}
    print(
        f"API's own cost in process: CPU us per request, medians of {args.turns} turns x "
        f"{args.rounds} rounds of {args.requests} requests per app"
    )
    for turn in range(args.turns):
        for side, folder in sides.items():  # the sides take turns: a slow spell hits both
            done = run_side(folder, scratch / f"project-{side}", args.rounds, args.requests)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            for app in APPS:
                results[side][app] += figures[app]
        print(f"   turn {turn + 1} of {args.turns} done", flush=True)

    own: dict[str, float] = {}
    print(f"   {'code':<10}{'echo':>8}{'classify':>10}{'/predict':>10}{'own':>8}")
    for side, figures in results.items():
        # The own cost per round (the same round's apps), then the median.
        rounds = zip(figures["predict"], figures["classify"], strict=True)
        own[side] = statistics.median(p - c for p, c in rounds)
        widths = zip(APPS, (8, 10, 10), strict=True)
        cells = "".join(f"{statistics.median(figures[a]):>{w}.0f}" for a, w in widths)
        print(f"   {side:<10}{cells}{own[side]:>8.0f}")
    print(f"   the API's own cost: {own['checkout']:.0f} us (target <= {OWN_TARGET_US} us)")
    if args.baseline:
        ratio = own["checkout"] / own[args.baseline]
        share = OWN_TARGET_US / OWN_BEFORE_US
        print(
            f"   against {args.baseline}'s {own[args.baseline]:.0f} us in this run: "
            f"{ratio:.2f} (target <= {share:.2f}, {OWN_TARGET_US} of {OWN_BEFORE_US} us; "
            f"here {share * own[args.baseline]:.0f} us)"
        )
    if args.instructions:
        count_instructions(sides, scratch, args.baseline)
    shutil.rmtree(scratch, ignore_errors=True)


def count_instructions(sides: dict[str, Path], scratch: Path, baseline: str | None) -> None:
    if shutil.which("valgrind") is None:
        print("   instructions: skipped (valgrind is missing: apt-get install valgrind)")
        return
    print("Instructions per request under callgrind (load-independent), thousands")
    print(f"   {'code':<10}{'echo':>8}{'classify':>10}{'/predict':>10}{'own':>8}")
    own = {}
    for side, folder in sides.items():
        counts = {
            app: instructions_per_request(folder, scratch / f"project-{side}", app) for app in APPS
        }
        own[side] = counts["predict"] - counts["classify"]
        cells = "".join(
            f"{counts[a] / 1000:>{w}.0f}" for a, w in zip(APPS, (8, 10, 10), strict=True)
        )
        print(f"   {side:<10}{cells}{own[side] / 1000:>8.0f}", flush=True)
    if baseline:
        share = OWN_TARGET_US / OWN_BEFORE_US
        print(
            f"   the API's own instructions against {baseline}'s: "
            f"{own['checkout'] / own[baseline]:.2f} (target <= {share:.2f})"
        )


if __name__ == "__main__":
    main()
