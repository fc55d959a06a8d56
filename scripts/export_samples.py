"""Export held-out images (never used for training) to data/samples/ as PNG files
in the data set's own format, named <label>_<row in ref_data.csv>.png.

    python scripts/export_samples.py [--per-label 5]
"""

import argparse

from mlstack.logs import setup_logging
from mlstack.pipeline import export_samples
from mlstack.settings import PipelineSettings

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-label", type=int, default=5)
    args = parser.parse_args()
    setup_logging()
    export_samples(PipelineSettings(), per_label=args.per_label)
