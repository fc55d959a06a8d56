"""Compare candidate classifiers on the embedded vectors.

For each candidate: stratified k-fold cross-validation on the training rows (the
digits' training split + the synthetic real-world-like rows), the accuracy on the
digits' held-out split, optionally the accuracy on a real-world-like folder
(scripts/make_realworld_set.py) through the upload path, and the fit time at
growing row counts up to the retraining cap and beyond (production-like rows:
training vectors with noise).

python scripts/compare_models.py                      # uses data/ and artifacts/
python scripts/compare_models.py --realworld /tmp/rw --sizes 10000 60000 100000
python scripts/compare_models.py --only none --retrain-rows 100000   # retraining cost only
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from mlstack.artifacts import ArtifactStore
from mlstack.fake_feedback import write_fake_feedback
from mlstack.pipeline import read_reference, read_synthetic
from mlstack.retraining import retrain
from mlstack.settings import PipelineSettings
from sklearn.base import ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

CANDIDATES: dict[str, Callable[[], ClassifierMixin]] = {
    "svc-rbf (C=10)": lambda: SVC(C=10.0, gamma="scale", kernel="rbf", random_state=0),
    "logistic regression": lambda: LogisticRegression(C=1.0, max_iter=2000),
    "knn (k=5, distance)": lambda: KNeighborsClassifier(n_neighbors=5, weights="distance"),
    "random forest (300)": lambda: RandomForestClassifier(300, n_jobs=1, random_state=0),
    "mlp (256, early stop)": lambda: MLPClassifier(
        (256,), early_stopping=True, max_iter=300, random_state=0
    ),
    "nystroem(600)+linear svm": lambda: make_pipeline(
        Nystroem(gamma=1 / 30, n_components=600, random_state=0),
        LinearSVC(C=1.0),
    ),
}


def _scaled(model: ClassifierMixin) -> ClassifierMixin:
    # As training.fit does: a StandardScaler before every model.
    return make_pipeline(StandardScaler(), model)


def cross_validate(
    make: Callable[[], ClassifierMixin], x: np.ndarray, y: np.ndarray, folds: int
) -> tuple[float, float]:
    accuracy, balanced = [], []
    splits = StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y)
    for train, test in splits:
        predicted = _scaled(make()).fit(x[train], y[train]).predict(x[test])
        accuracy.append(accuracy_score(y[test], predicted))
        balanced.append(balanced_accuracy_score(y[test], predicted))
    return float(np.mean(accuracy)), float(np.mean(balanced))


def production_like(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple:
    """n rows drawn from the training rows plus noise: a stand-in for feedback rows."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(x), n)
    return x[pick] + rng.normal(0, 0.3 * x.std(axis=0), (n, x.shape[1])), y[pick]


def realworld_vectors(folder: Path, settings: PipelineSettings) -> tuple[np.ndarray, np.ndarray]:
    embedding = ArtifactStore(settings.artifacts_dir).load().embedding
    with open(folder / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    vectors = [
        embedding.embed_bytes(
            (folder / row["file"]).read_bytes(),
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
        )
        for row in rows
    ]
    return np.array(vectors), np.array([int(row["label"]) for row in rows])


def retraining_cost(settings: PipelineSettings, prod_rows: int) -> None:
    """Time retraining.retrain on a copy of the project holding `prod_rows` feedback rows."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(settings.data_dir, root / "data", symlinks=True)
        shutil.copytree(settings.artifacts_dir, root / "artifacts", symlinks=True)
        copy = settings.model_copy(
            update={
                "project_root": root,
                "data_dir": root / "data",
                "artifacts_dir": root / "artifacts",
            }
        )
        write_fake_feedback(copy, prod_rows, predicted=False)
        started = time.perf_counter()
        manifest = retrain(copy, reason="cost measurement")
        seconds = time.perf_counter() - started
    # No accuracy here: the stand-in rows are noisy copies of reference rows, the
    # holdout's included.
    print(
        f"retraining with {prod_rows:,} rows in prod_data.csv: {seconds:.1f}s "
        f"(rows used {manifest.rows}, cap max_training_rows={settings.max_training_rows:,})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--realworld", type=Path, help="a folder from make_realworld_set.py")
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[10_000, 30_000, 60_000], help="fit-time rows"
    )
    parser.add_argument(
        "--max-fit-seconds",
        type=float,
        default=120.0,
        help="skip a candidate's larger sizes once one fit took longer than this",
    )
    parser.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    parser.add_argument(
        "--retrain-rows",
        type=int,
        default=0,
        help="also time retraining.retrain with this many prod rows",
    )
    args = parser.parse_args(argv)
    settings = PipelineSettings()
    n = ArtifactStore(settings.artifacts_dir).manifest().n_components
    ref = read_reference(settings, n)
    synthetic, synthetic_targets = read_synthetic(settings, n)
    x = np.vstack([ref.vectors[ref.train], synthetic])
    y = np.concatenate([ref.targets[ref.train], synthetic_targets.astype(ref.targets.dtype)])
    holdout_x, holdout_y = ref.vectors[ref.holdout], ref.targets[ref.holdout]
    world = realworld_vectors(args.realworld, settings) if args.realworld else None
    print(
        f"training rows: {len(ref.train)} digits + {len(synthetic)} synthetic, "
        f"{n} components; holdout {len(holdout_y)} digits"
        + (f"; real-world {len(world[1])} images" if world else "")
    )
    header = f"{'candidate':<26}{'cv acc':>8}{'cv bal':>8}{'holdout':>9}"
    header += f"{'real':>7}" if world else ""
    header += "".join(f"{'fit@' + format(size, ','):>12}" for size in [len(y), *args.sizes])
    print(header)
    for name, make in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        cv_acc, cv_bal = cross_validate(make, x, y, args.folds)
        fitted = _scaled(make()).fit(x, y)
        line = f"{name:<26}{cv_acc:>8.4f}{cv_bal:>8.4f}"
        line += f"{accuracy_score(holdout_y, fitted.predict(holdout_x)):>9.4f}"
        if world:
            line += f"{accuracy_score(world[1], fitted.predict(world[0])):>7.3f}"
        slow = False
        for size in [len(y), *args.sizes]:
            if slow:
                line += f"{'skipped':>12}"
                continue
            rows_x, rows_y = (x, y) if size == len(y) else production_like(x, y, size)
            started = time.perf_counter()
            _scaled(make()).fit(rows_x, rows_y)
            seconds = time.perf_counter() - started
            slow = seconds > args.max_fit_seconds
            line += f"{seconds:>11.1f}s"
        print(line, flush=True)
    if args.retrain_rows:
        retraining_cost(settings, args.retrain_rows)


if __name__ == "__main__":
    main()
