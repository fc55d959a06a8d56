"""Times the report run (`python -m mlstack.reporting`) on 1k, 10k and 100k feedback rows.

First, on 1,000 rows, the two figures of the targets, each beside the old path in the
same run (Evidently's DataDriftPreset drawn in full, one snapshot after the other, the
reference rebuilt per batch: what the run did before, kept here for the comparison):
  per snapshot  one batch's report, in process (median of --repeats, batches rotated)
  first run     the real command in a fresh workspace

Then, for each size, in a fresh workspace over a freshly trained project:
  first    the first run (what the container does before the UI starts): at most
           REPORT_MAX_NEW_SNAPSHOTS snapshots, newest batches first
  again    a re-run with nothing new (what the schedule does most of the time)
  +rows    a re-run after 20 more feedback rows arrived
  catch-up the runs after it until every batch has its snapshot

Each run is the real command in its own process, so Python and Evidently start-up count.

    .venv/bin/python benchmarks/reporting.py                  # 1000 10000 100000
    .venv/bin/python benchmarks/reporting.py --rows 1000
    .venv/bin/python benchmarks/reporting.py --rows            # the two targets only
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlstack.fake_feedback import make_feedback, write_feedback
from mlstack.pipeline import bootstrap
from mlstack.settings import PipelineSettings, ReportingSettings

TARGET_SNAPSHOT_S = 1.0
TARGET_FIRST_RUN_S = 10.0
# The old path's figures on an ordinary day here (load about 2.7): the targets as
# speed-ups, which a busy machine does not blur as it does seconds
OLD_SNAPSHOT_S = 3.2
OLD_FIRST_RUN_S = 39.6

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


@contextlib.contextmanager
def old_path() -> Iterator[None]:
    """The report run as it was: Evidently's DataDriftPreset (its per-column figures,
    its tests run again for the count and the table), snapshots one after the other,
    the reference Dataset built for each batch."""
    from evidently.presets import DataDriftPreset
    from mlstack.reporting import report, run

    def one_by_one(inputs, batches, drift_share):
        for batch in batches:
            yield report.run_batch(inputs, batch, drift_share).to_snapshot_model()

    saved = report.EmbeddingDrift, run._snapshots
    report.EmbeddingDrift, run._snapshots = DataDriftPreset, one_by_one
    try:
        yield
    finally:
        report.EmbeddingDrift, run._snapshots = saved


def per_snapshot(settings: ReportingSettings, repeats: int) -> tuple[float, float]:
    """Median seconds of one batch's report: (now, the old path), alternated."""
    from mlstack.reporting.data import batch_size, load_inputs, split_batches
    from mlstack.reporting.report import reference_dataset, run_batch

    inputs = load_inputs(settings)
    batches = split_batches(inputs.prod, batch_size(len(inputs.prod), settings), settings)
    reference = reference_dataset(inputs)
    share = settings.report_drift_share

    def now(batch) -> None:
        run_batch(inputs, batch, share, reference).to_snapshot_model()

    def before(batch) -> None:
        with old_path():
            run_batch(inputs, batch, share).to_snapshot_model()

    times: dict = {now: [], before: []}
    for repeat in range(repeats + 1):
        batch = batches[repeat % len(batches)]
        for path in (now, before) if repeat % 2 else (before, now):
            start = time.perf_counter()
            path(batch)
            if repeat:  # the first round warms up
                times[path].append(time.perf_counter() - start)
    return statistics.median(times[now]), statistics.median(times[before])


def timed_run(env: dict[str, str], old: bool = False) -> Timed:
    start = time.perf_counter()
    command = [__file__, "--run-old-path"] if old else ["-m", "mlstack.reporting"]
    done = subprocess.run(
        [sys.executable, *command],
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


def project_env(pipeline: PipelineSettings, workspace: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATA_DIR": str(pipeline.data_dir),
        "ARTIFACTS_DIR": str(pipeline.artifacts_dir),
        "WORKSPACE_DIR": str(workspace),
        "DO_NOT_TRACK": "1",
    }


def targets(pipeline: PipelineSettings, tmp: Path, repeats: int) -> list[str]:
    """The two figures of the targets on 1,000 feedback rows, each beside the old path."""
    write_feedback(make_feedback(pipeline, 1_000, seed=1_000), pipeline.prod_data_path)
    print("1000 rows: per snapshot, now and the old path ...", flush=True)
    settings = ReportingSettings(
        project_root=pipeline.project_root,
        data_dir=pipeline.data_dir,
        artifacts_dir=pipeline.artifacts_dir,
        workspace_dir=tmp / "unused",
    )
    snapshot, snapshot_old = per_snapshot(settings, repeats)
    lines = [
        f"reporting: one snapshot (100 rows, in process) {snapshot:.2f} s "
        f"(target <= {TARGET_SNAPSHOT_S:g} s); the old path in this run {snapshot_old:.2f} s: "
        f"{snapshot_old / snapshot:.1f}x faster (target >= "
        f"{OLD_SNAPSHOT_S / TARGET_SNAPSHOT_S:.1f}x, {OLD_SNAPSHOT_S:g} s to "
        f"{TARGET_SNAPSHOT_S:g} s)"
    ]
    print(lines[-1], flush=True)
    print("1000 rows: first run, now and the old path ...", flush=True)
    first = timed_run(project_env(pipeline, tmp / "targets-now"))
    first_old = timed_run(project_env(pipeline, tmp / "targets-old"), old=True)
    lines.append(
        f"reporting: first run on 1,000 feedback rows {first.wall_s:.1f} s, "
        f"{first.snapshots} snapshots (target <= {TARGET_FIRST_RUN_S:g} s); "
        f"the old path in this run {first_old.wall_s:.1f} s: "
        f"{first_old.wall_s / first.wall_s:.1f}x faster (target >= "
        f"{OLD_FIRST_RUN_S / TARGET_FIRST_RUN_S:.1f}x, {OLD_FIRST_RUN_S:g} s to "
        f"{TARGET_FIRST_RUN_S:g} s); in run_once {first.work_s:.1f} s against "
        f"{first_old.work_s:.1f} s"
    )
    print(lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, nargs="*", default=[1_000, 10_000, 100_000], help="none: targets only"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed snapshots per path")
    parser.add_argument("--run-old-path", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_old_path:  # one report run by the old path (what timed_run(old=True) runs)
        from mlstack.reporting.cli import main as report_main

        with old_path():
            return report_main([])

    lines = []
    with tempfile.TemporaryDirectory(prefix="reporting-bench-") as tmp:
        root = Path(tmp) / "project"
        print(f"training a project in {root} ...", flush=True)
        pipeline = PipelineSettings(project_root=root)
        bootstrap(pipeline)
        figures = targets(pipeline, Path(tmp), args.repeats)
        for rows in args.rows:
            print(f"{rows} rows: generating ...", flush=True)
            write_feedback(make_feedback(pipeline, rows, seed=rows), pipeline.prod_data_path)
            workspace = Path(tmp) / f"workspace-{rows}"
            env = project_env(pipeline, workspace)
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
    print("\n".join(figures))
    if lines:
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
