"""Start over: put aside everything the stack has built or collected (`make reset`).

    python scripts/reset.py            # lists what it would move, asks, then moves it
    python scripts/reset.py --yes      # no question
    python scripts/reset.py --delete   # removes instead of moving aside

What goes: data/ref_data.csv, data/synthetic_data.csv, data/prod_data.csv (the
feedback rows, with its .count and .lock), data/samples/, every artifact version and
the reporting workspace. By default it is moved into data/archive/<date-time>-reset/ under
the same names, so nothing is lost; the next start (make up, make run, or
scripts/bootstrap.py) builds the reference data and trains again from the data set.
Stop the services first: a running API would go on writing into the moved files.
"""

from __future__ import annotations

import argparse
import sys

from mlstack.archive import archive_folder, delete, move_aside, what_goes
from mlstack.settings import PipelineSettings, ReportingSettings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yes", action="store_true", help="do not ask")
    parser.add_argument("--delete", action="store_true", help="remove instead of moving aside")
    args = parser.parse_args()
    pipeline, reporting = PipelineSettings(), ReportingSettings()
    paths = what_goes(pipeline, reporting)
    if not paths:
        print("nothing to reset: no data, artifacts or reports yet")
        return 0
    archive = archive_folder(pipeline, "reset")
    verb = "delete" if args.delete else f"move into {archive}"
    print(f"This will {verb}:")
    for path in paths:
        print(f"  {path}")
    if not args.yes and input("Go on? [y/N] ").strip().lower() not in ("y", "yes"):
        print("nothing changed")
        return 1
    if args.delete:
        delete(paths)
    else:
        move_aside(paths, archive, pipeline.project_root)
    print("done: the next start builds the reference data and trains again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
