"""Example tables that ship with scikit-learn, written as CSV files a user can point
DATASET_CSV at (nothing is downloaded):

    python -m mlstack.examples wine --out data/examples     # data/examples/wine.csv
    python -m mlstack.examples all --out data/examples
    DATASET_CSV=data/examples/wine.csv python scripts/bootstrap.py

- wine: 178 wines, 13 chemical measurements, 3 cultivars (labels class_0..class_2);
- breast_cancer: 569 tumours, 30 measurements, labels malignant / benign.

Both label columns are named `target` (the default TARGET_COLUMN) and hold text, so
they exercise text labels; the digits stay the stack's default data set.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd

TARGET = "target"


def _from_sklearn(loader: Callable) -> pd.DataFrame:
    bunch = loader(as_frame=True)
    frame = bunch.frame.copy()
    names = list(bunch.target_names)
    frame[TARGET] = [names[int(i)] for i in bunch.target]
    # Column names a JSON client types as is: "mean radius" -> "mean_radius".
    frame.columns = [str(c).replace(" ", "_").replace("/", "_") for c in frame.columns]
    return frame


def wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    return _from_sklearn(load_wine)


def breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return _from_sklearn(load_breast_cancer)


TABLES: dict[str, Callable[[], pd.DataFrame]] = {"wine": wine, "breast_cancer": breast_cancer}


def write_table(name: str, out: Path) -> Path:
    """data set `name` -> OUT/<name>.csv (TARGET_COLUMN `target`)."""
    if name not in TABLES:
        raise ValueError(f"unknown example table {name!r}: one of {sorted(TABLES)}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.csv"
    TABLES[name]().to_csv(path, index=False)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="*", default=["all"], help=f"{sorted(TABLES)} or all")
    parser.add_argument("--out", type=Path, default=Path("data/examples"), help="folder")
    args = parser.parse_args(argv)
    names = sorted(TABLES) if "all" in args.tables else args.tables
    for name in names:
        path = write_table(name, args.out)
        print(f"{path}  (DATASET_CSV={path} TARGET_COLUMN={TARGET})")


if __name__ == "__main__":
    main()
