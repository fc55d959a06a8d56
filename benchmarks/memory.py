"""Memory benchmark: what one serving worker needs, for the containers' and the k8s
limits (not a test).

    python benchmarks/memory.py                  # about a minute

One `uvicorn mlstack.serving.app:app` worker (no retraining: RETRAIN_EVERY_K is out of
reach) on a freshly trained project; its resident memory (VmRSS, and the peak, VmHWM,
from /proc) is read:
  - after start (the model loaded);
  - after 200 predictions of an 8x8 sample;
  - after one prediction of the largest image accepted (MAX_IMAGE_PIXELS, 40 megapixels
    by default: a PNG of a few hundred KB that decodes to 40 million RGBA pixels);
  - after LARGE_DECODES_AT_ONCE (2) such predictions sent at once, then 4 at once (the
    others wait for a slot: the peak must not grow with the number sent).
A pod's memory limit is then about: workers x (the last peak) + the retraining when it
runs in the API (a separate process: see --retrain).
The worker runs with MALLOC_ARENA_MAX=2, as in the serving image and the k8s pods
(`--glibc-arenas`: glibc's default, one arena per thread, as a bare `uvicorn` runs).
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from mlstack.pipeline import bootstrap
from mlstack.settings import PipelineSettings
from PIL import Image, ImageDraw


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def large_png(pixels: int) -> bytes:
    """A digit drawn on a white page of `pixels` pixels (RGBA): small as a file, the
    largest image accepted once decoded."""
    side = int(pixels**0.5)
    page = Image.new("RGBA", (side, side), "white")
    ImageDraw.Draw(page).text((side // 3, side // 3), "7", fill="black", font_size=side // 3)
    out = io.BytesIO()
    page.save(out, format="PNG", optimize=True)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=40_000_000, help="MAX_IMAGE_PIXELS")
    parser.add_argument(
        "--retrain", action="store_true", help="also one retraining in the API (k = 1)"
    )
    parser.add_argument(
        "--glibc-arenas",
        action="store_true",
        help="glibc's default malloc arenas, not the image's MALLOC_ARENA_MAX=2",
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mlstack-memory-"))
    print(f"training a project in {scratch} ...", flush=True)
    bootstrap(PipelineSettings(project_root=scratch))
    port = free_port()
    env = {
        **os.environ,
        "PROJECT_ROOT": str(scratch),
        "RETRAIN_EVERY_K": "1" if args.retrain else "1000000000",
        "MAX_IMAGE_PIXELS": str(args.pixels),
    }
    if args.glibc_arenas:
        env.pop("MALLOC_ARENA_MAX", None)
    else:
        env["MALLOC_ARENA_MAX"] = "2"  # the serving image's ENV
    log = (scratch / "uvicorn.log").open("ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "mlstack.serving.app:app", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    rows: list[tuple[str, float, float]] = []

    def record(what: str) -> None:
        rows.append((what, mib(server.pid, "VmRSS"), mib(server.pid, "VmHWM")))

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        record("started, model loaded")
        sample = next((scratch / "data" / "samples").glob("*.png")).read_bytes()
        small = {"image": base64.b64encode(sample).decode()}
        with httpx.Client(timeout=120) as client:
            for _ in range(200):
                client.post(url + "/predict", json=small).raise_for_status()
            record("after 200 predictions (8x8)")
            big = large_png(args.pixels)
            body = {"image": base64.b64encode(big).decode()}
            answer = client.post(url + "/predict", json=body)
            assert answer.status_code == 200, answer.text
            record(f"after one {args.pixels / 1e6:.0f} MP image ({len(big) // 1024} KB PNG)")
            for at_once in (2, 4):
                with ThreadPoolExecutor(at_once) as pool:
                    answers = list(
                        pool.map(lambda _: client.post(url + "/predict", json=body), range(at_once))
                    )
                assert all(a.status_code == 200 for a in answers)
                record(f"after {at_once} such images sent at once")
            if args.retrain:
                feedback = {**small, "prediction": 0, "target": 0}
                client.post(url + "/feedback", json=feedback).raise_for_status()
                record("after one retraining (its own process, gone)")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    arenas = "glibc's default arenas" if args.glibc_arenas else "MALLOC_ARENA_MAX=2"
    print(f"\none serving worker (uvicorn, {os.cpu_count()} cores, {arenas})\n")
    print(f"| {'moment':<44} | RSS MiB | peak MiB |")
    print(f"|{'-' * 46}|--------:|---------:|")
    for what, rss, peak in rows:
        print(f"| {what:<44} | {rss:7.0f} | {peak:8.0f} |")


if __name__ == "__main__":
    main()
