"""What the metrics cost the serving API: the middleware's own time per request
(in process, steady), requests per second of a trivial route with and without it (wrk,
2 uvicorn workers on loopback; the load generator shares the cores, so this one is
noisy), and the time of one /metrics scrape.

    .venv/bin/python benchmarks/metrics.py [--seconds 10]

Prints a Markdown table; the figures in docs/monitoring.md come from it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI
from mlstack.serving import metrics

# The app under load (`metrics:app`, imported by uvicorn from this folder): one trivial
# route, with the serving API's metrics when BENCH_INSTRUMENT=1.
app = FastAPI()
if os.environ.get("BENCH_INSTRUMENT") == "1":
    metrics.instrument(app)


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.get("/items/{item_id}")
def item(item_id: int) -> dict:
    return {"item": item_id}


def wrk(url: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def scrape_ms(url: str, times: int = 50) -> float:
    durations = []
    with httpx.Client() as client:
        for _ in range(times):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            durations.append((time.perf_counter() - started) * 1000)
    return statistics.median(durations)


def middleware_us(requests: int = 20000) -> tuple[float, float]:
    """Microseconds per request of a bare ASGI app, without and with the middleware."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")

    class Route:
        path = "/items/{item_id}"

    async def bare(scope: dict, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        return None

    async def run(app) -> float:
        started = time.perf_counter()
        for _ in range(requests):
            await app({"type": "http", "method": "GET", "route": Route}, receive, send)
        return (time.perf_counter() - started) / requests * 1e6

    wrapped = metrics.PrometheusMiddleware(bare)
    asyncio.run(run(wrapped))  # warm up: the series are created once
    return asyncio.run(run(bare)), asyncio.run(run(wrapped))


def main() -> None:
    from serving import Uvicorn  # benchmarks/serving.py's launcher (this script's folder)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    args = parser.parse_args()
    bare, wrapped = middleware_us()
    print(f"middleware: {wrapped - bare:.1f} us per request ({bare:.1f} -> {wrapped:.1f} us)")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing (apt-get install -y wrk): no requests/s figures")
    rows = []
    for instrumented in ("0", "1"):
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                "BENCH_INSTRUMENT": instrumented,
                "PROMETHEUS_MULTIPROC_DIR": str(Path(tmp) / "multiproc"),
            }
            server = Uvicorn("metrics:app", 2, env, Path(tmp) / "uvicorn.log")
            try:
                print(f"wrk on {'with' if instrumented == '1' else 'without'} metrics...")
                rate = wrk(f"{server.url}/items/1", args.seconds)
                scrape = scrape_ms(f"{server.url}/metrics") if instrumented == "1" else None
            finally:
                server.stop()
            rows.append((instrumented == "1", rate, scrape))
    base_rate = rows[0][1]
    print("\n| middleware | requests/s (GET /items/1, 2 workers) | change | one /metrics scrape |")
    print("|---|---|---|---|")
    for on, rate, scrape in rows:
        change = f"{(rate / base_rate - 1) * 100:+.1f}%" if on else "baseline"
        took = f"{scrape:.1f} ms" if scrape is not None else "-"
        print(f"| {'on' if on else 'off'} | {rate:,.0f} | {change} | {took} |")


if __name__ == "__main__":
    main()
