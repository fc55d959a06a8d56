"""The Evidently project of the deployed classifier: data drift and classification quality.

`python -m mlstack.reporting` (or `cd reporting && python project.py`) creates, or
brings up to date, a local Evidently workspace with one project, whose reference is
data/ref_data.csv and whose current data is the feedback in data/prod_data.csv, one
snapshot per batch of feedback rows (mlstack.reporting.run).

`--every 60` (or `--every` with REPORT_EVERY_SECONDS=60) repeats that every minute, so
the running `evidently ui` shows new feedback without a restart.
"""

from __future__ import annotations

import argparse
import logging
import math

from ..logs import setup_logging
from ..settings import ReportingSettings
from .run import run_forever, run_once

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--every",
        type=float,
        nargs="?",
        const=-1.0,
        default=None,
        metavar="SECONDS",
        help="re-run on this schedule; with no value, REPORT_EVERY_SECONDS (0: run once). "
        "Without --every the script runs once, whatever the environment says",
    )
    parser.add_argument(
        "--skip-first",
        action="store_true",
        help="with --every: wait one interval before the first run (it has just run)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    logging.getLogger("evidently").setLevel(logging.WARNING)
    settings = ReportingSettings()
    # one run, whatever the environment (the container starts the UI after it)
    every = args.every if args.every is not None and args.every >= 0 else 0.0
    if args.every is not None and args.every < 0:  # `--every` alone
        every = settings.report_every_seconds
    if every > 0 and math.isfinite(every):
        run_forever(every, settings, skip_first=args.skip_first)
        return 0
    if args.skip_first:  # a schedule of 0 after a first run: nothing more to do
        return 0
    try:
        run_once(settings)
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    return 0
