"""Write the feedback table (DATABASE_URL) to prod_data.csv, in the brief's format.

    python scripts/export_prod.py                    # DATA_DIR/prod_data.csv
    python scripts/export_prod.py --out rows.csv

Columns PCA_1..PCA_n, target, prediction, timestamp, model_version, prediction_id, in
the order the rows were stored; the file is written under a temporary name and renamed,
so a reader never sees half of it. Values are written so that they read back exactly.
"""

import argparse
import os
import sys
from pathlib import Path

from mlstack.logs import setup_logging
from mlstack.settings import StackSettings
from mlstack.stores import open_artifact_store, open_prod_store, uses_database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, help="the file to write (default DATA_DIR/prod_data.csv)"
    )
    args = parser.parse_args(argv)
    setup_logging()
    settings = StackSettings()
    if not uses_database(settings):
        print("DATABASE_URL is not set: prod_data.csv is already the store", file=sys.stderr)
        return 2
    n = open_artifact_store(settings).manifest().n_components
    store = open_prod_store(settings, n)
    frame = store.read()
    out = args.out or settings.prod_data_path
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    frame[store.columns].to_csv(tmp, index=False)
    os.replace(tmp, out)
    print(f"wrote {len(frame)} rows to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
