"""Everything a fresh clone needs before the services start: data/ref_data.csv,
the artifacts and sample images. Builds only what is missing (--force: all).

    python scripts/bootstrap.py
"""

import argparse

from mlstack.logs import setup_logging
from mlstack.pipeline import bootstrap
from mlstack.settings import PipelineSettings

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args()
    setup_logging()
    artifacts = bootstrap(PipelineSettings(), force=args.force)
    print(f"artifacts version {artifacts.version} ready: {artifacts.manifest.metrics}")
