"""Times the report run (`python -m mlstack.reporting`) on 1k, 10k and 100k feedback rows.

For each size, in a fresh workspace over a freshly trained project:
  first    the first run (what the container does before the UI starts): at most
           REPORT_MAX_NEW_SNAPSHOTS snapshots, newest batches first
  again    a re-run with nothing new (what the schedule does most of the time)
  +rows    a re-run after 20 more feedback rows arrived
  catch-up the runs after it until every batch has its snapshot

Each run is the real command in its own process, so Python and Evidently start-up count.

    .venv/bin/python benchmarks/reporting.py                  # 1000 10000 100000
    .venv/bin/python benchmarks/reporting.py --rows 1000
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlstack.fake_feedback import make_feedback, write_feedback
from mlstack.pipeline import bootstrap
from mlstack.settings import PipelineSettings

SUMMARY = re.compile(
    r"(\d+) feedback rows, (\d+) batches, (\d+) snapshots added, (\d+) replaced \(([\d.]+) s\)"
)


@dataclass
class Timed:
    wall_s: float  # the whole command, Python and Evidently start-up included
    work_s: float  # inside run_once, as the run logs it
    batches: int
    snapshots: int  # added + replaced

    def __str__(self) -> str:
        return f"{self.wall_s:.1f} s ({self.work_s:.1f} s, {self.snapshots} snapshots)"


def timed_run(env: dict[str, str]) -> Timed:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mlstack.reporting"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    wall = time.perf_counter() - start
    found = SUMMARY.findall(done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"the report run failed:\n{done.stderr[-3000:]}")
    _, batches, added, replaced, work = found[-1]
    return Timed(wall, float(work), int(batches), int(added) + int(replaced))


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args(argv)

    lines = []
    with tempfile.TemporaryDirectory(prefix="reporting-bench-") as tmp:
        root = Path(tmp) / "project"
        print(f"training a project in {root} ...", flush=True)
        pipeline = PipelineSettings(project_root=root)
        bootstrap(pipeline)
        for rows in args.rows:
            print(f"{rows} rows: generating ...", flush=True)
            write_feedback(make_feedback(pipeline, rows, seed=rows), pipeline.prod_data_path)
            workspace = Path(tmp) / f"workspace-{rows}"
            env = {
                **os.environ,
                "DATA_DIR": str(pipeline.data_dir),
                "ARTIFACTS_DIR": str(pipeline.artifacts_dir),
                "WORKSPACE_DIR": str(workspace),
                "DO_NOT_TRACK": "1",
            }
            print(f"{rows} rows: first run ...", flush=True)
            first = timed_run(env)
            print(f"{rows} rows: catching up ...", flush=True)
            catch_up = []
            while True:
                run = timed_run(env)
                if run.snapshots == 0:
                    break
                catch_up.append(run)
            again = run  # the last run of the catch-up found nothing new
            more = make_feedback(
                pipeline, 20, seed=rows + 1, start=pd.Timestamp("2026-06-01", tz="UTC")
            )
            write_feedback(more, pipeline.prod_data_path, append=True)
            plus = timed_run(env)
            made = first.snapshots + sum(r.snapshots for r in catch_up)
            work = first.work_s + sum(r.work_s for r in catch_up)
            lines.append(
                (
                    rows,
                    first.batches,
                    first,
                    len(catch_up),
                    work / made,
                    again,
                    plus,
                    folder_mb(workspace),
                )
            )

    print()
    print(
        "| prod rows | batches | first run: wall (in run_once, snapshots) | more runs to "
        "catch up | per snapshot | re-run, nothing new | re-run, +20 rows | workspace |"
    )
    print("|---:|---:|---|---:|---:|---|---|---:|")
    for rows, batches, first, runs, per, again, plus, mb in lines:
        print(
            f"| {rows:,} | {batches} | {first} | {runs} | {per:.1f} s | {again} | {plus} "
            f"| {mb:.0f} MB |"
        )
    print(f"\n(load average while it ran: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
