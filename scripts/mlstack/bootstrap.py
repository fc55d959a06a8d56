"""Everything a fresh clone needs before the services start: data/ref_data.csv,
the artifacts and sample images. Builds only what is missing (--force: all).

    python scripts/bootstrap.py          # from a checkout
    python -m mlstack.bootstrap          # anywhere the package is installed (a container)

When the settings name another data set (DATASET_DIR, DATASET_CSV, IMAGE_FEATURES,
IMAGE_MODEL) than the artifacts were trained on, what belonged to the old one is
moved into DATA_DIR/archive/<time>-<name>/ and everything is built for the new one
(the API's own start refuses instead: a forgotten variable must not do it).
"""

from __future__ import annotations

import argparse
import sys

from .archive import DatasetSwitchError
from .logs import setup_logging
from .pipeline import bootstrap
from .settings import PipelineSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--force", action="store_true", help="train again even if present (same data set)"
    )
    args = parser.parse_args(argv)
    setup_logging()
    try:
        artifacts = bootstrap(PipelineSettings(), force=args.force, switch=True)
    except DatasetSwitchError as error:
        print(f"not switched: {error}", file=sys.stderr)
        return 2
    print(f"artifacts version {artifacts.version} ready: {artifacts.manifest.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
