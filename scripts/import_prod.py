"""Move a file deployment to the database (DATABASE_URL): its model and its feedback
rows; run it again at will.

    python scripts/import_prod.py                    # DATA_DIR/prod_data.csv
    python scripts/import_prod.py --file rows.csv

Into a database that holds no model version yet, the version in use of ARTIFACTS_DIR
and the reference files of DATA_DIR (ref_data.csv, synthetic_data.csv) are copied
first, so the replicas that start on it serve the same model; a database that has
one keeps it.

Rows are stored one transaction each, in file order, as the API stores them: a row
whose prediction_id is already in the table is skipped, so importing the same file
twice stores it once. A row without a prediction_id gets one made from its line
number and content (the same on every run).
"""

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from mlstack.logs import setup_logging
from mlstack.prod_store import ProdDataStore
from mlstack.settings import StackSettings
from mlstack.stores import copy_deployment, open_artifact_store, open_prod_store, uses_database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--file", type=Path, help="the file to read (default DATA_DIR/prod_data.csv)"
    )
    args = parser.parse_args(argv)
    setup_logging()
    settings = StackSettings()
    if not uses_database(settings):
        print("DATABASE_URL is not set: there is no table to import into", file=sys.stderr)
        return 2
    path = args.file or settings.prod_data_path
    copied = copy_deployment(settings)
    if copied is not None:
        print(f"copied the model in use of {settings.artifacts_dir} as version {copied}")
    n = open_artifact_store(settings).manifest().n_components
    store = open_prod_store(settings, n)
    frame = ProdDataStore(path, n).read()  # whole lines only, values exactly as written
    features = [c for c in store.columns if c.startswith("PCA_")]
    before = store.rows()
    for i, values in enumerate(frame.to_dict("records")):
        prediction_id = values.get("prediction_id")
        if not isinstance(prediction_id, str) or not prediction_id:
            digest = hashlib.sha256(f"{i}:{sorted(values.items())}".encode()).hexdigest()
            prediction_id = f"import-{digest[:32]}"
        version = pd.to_numeric(values.get("model_version"), errors="coerce")
        timestamp = values.get("timestamp")
        store.append(
            np.array([values[c] for c in features], dtype=np.float64),
            values["target"],
            values["prediction"],
            timestamp=timestamp if isinstance(timestamp, str) else "",
            model_version=0 if pd.isna(version) else int(version),
            prediction_id=prediction_id,
        )
    after = store.rows()
    print(f"read {len(frame)} rows from {path}; {after - before} new, the table holds {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
