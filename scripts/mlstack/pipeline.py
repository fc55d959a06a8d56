"""The steps that produce data and models: the reference data, the first training,
sample images, and retraining on reference + production data."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .artifacts import ArtifactSet, ArtifactStore, Manifest
from .augment import training_grids
from .dataset import Dataset, load_dataset
from .embedding import Embedding, feature_columns
from .gate import JUDGED, GateRules, in_feedback_holdout, judge
from .logs import setup_logging
from .orphans import die_with_parent
from .preprocessing import grid_to_png
from .prod_store import ProdDataStore
from .settings import PipelineSettings
from .training import Classifier, evaluate, fit, holdout_split

log = logging.getLogger(__name__)


@dataclass
class Reference:
    """ref_data.csv in memory: vectors, targets and the fixed train/holdout split."""

    vectors: np.ndarray
    targets: np.ndarray
    train: np.ndarray
    holdout: np.ndarray


def _write_csv_atomically(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False, float_format="%.17g")
    os.replace(tmp, path)


def _write_vectors(
    path: Path, vectors: np.ndarray, targets: np.ndarray, columns: list[str]
) -> None:
    """The layout of ref_data.csv and synthetic_data.csv: PCA_1..PCA_n, target."""
    frame = pd.DataFrame(vectors, columns=columns)
    frame["target"] = targets
    _write_csv_atomically(frame, path)


def _read_vectors(path: Path, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(path)
    vectors = frame[feature_columns(n_components)].to_numpy(dtype=np.float64)
    return vectors, frame["target"].to_numpy()


def _dataset(settings: PipelineSettings) -> Dataset:
    dataset = load_dataset(
        settings.dataset_dir,
        **(
            {}
            if settings.dataset_dir is None
            else {"max_bytes": settings.max_upload_bytes, "max_pixels": settings.max_image_pixels}
        ),
    )
    log.info("data set %s: %d images, %d labels", dataset.name, len(dataset), len(dataset.classes))
    return dataset


def build_reference(
    settings: PipelineSettings,
    dataset: Dataset | None = None,
    extra_grids: np.ndarray | None = None,
) -> tuple[Dataset, Embedding, Reference]:
    """Fit the PCA on the training split (and `extra_grids`, synthetic training
    images) and write data/ref_data.csv (PCA_1..PCA_n, target) for every image of
    the data set."""
    dataset = dataset or _dataset(settings)
    train, holdout = holdout_split(dataset.labels, settings.holdout_fraction, settings.random_state)
    fit_grids = dataset.grids[train]
    if extra_grids is not None and len(extra_grids):
        fit_grids = np.concatenate([fit_grids, extra_grids])
    embedding = Embedding.fit(
        fit_grids, dataset.format, settings.n_components, settings.random_state
    )
    vectors = embedding.transform(dataset.grids)
    _write_vectors(settings.ref_data_path, vectors, dataset.labels, embedding.columns)
    log.info(
        "wrote %s: %d rows x %d components (%.1f%% of the variance)",
        settings.ref_data_path,
        len(vectors),
        embedding.n_components,
        100 * embedding.explained_variance_ratio.sum(),
    )
    return dataset, embedding, Reference(vectors, dataset.labels, train, holdout)


def read_reference(settings: PipelineSettings, n_components: int) -> Reference:
    vectors, targets = _read_vectors(settings.ref_data_path, n_components)
    train, holdout = holdout_split(targets, settings.holdout_fraction, settings.random_state)
    return Reference(vectors, targets, train, holdout)


def _synthetic_grids(settings: PipelineSettings, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic real-world-like digits (mlstack.augment) for the default data set
    only: a user's own images are not digits."""
    if settings.dataset_dir is not None or settings.synthetic_per_label == 0:
        return np.empty((0, *dataset.format.shape)), np.empty(0, dtype=int)
    return training_grids(settings.synthetic_per_label, settings.random_state, dataset.format)


def _write_synthetic(
    settings: PipelineSettings, embedding: Embedding, grids: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """Embed the synthetic grids and keep them in data/synthetic_data.csv for
    retraining; ref_data.csv stays the data set's own images."""
    path = settings.synthetic_data_path
    if not len(grids):
        path.unlink(missing_ok=True)
        return np.empty((0, embedding.n_components))
    vectors = embedding.transform(grids)
    _write_vectors(path, vectors, targets, embedding.columns)
    return vectors


def read_synthetic(settings: PipelineSettings, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """data/synthetic_data.csv as (vectors, targets); empty when there is none."""
    path = settings.synthetic_data_path
    if not path.exists():
        return np.empty((0, n_components)), np.empty(0, dtype=int)
    return _read_vectors(path, n_components)


def train_initial(settings: PipelineSettings) -> Manifest:
    """Data set -> ref_data.csv -> scaler + classifier -> artifacts version 1 (or next)."""
    started = time.perf_counter()
    dataset = _dataset(settings)
    synthetic, synthetic_targets = _synthetic_grids(settings, dataset)
    dataset, embedding, ref = build_reference(settings, dataset, synthetic)
    synthetic_vectors = _write_synthetic(settings, embedding, synthetic, synthetic_targets)
    vectors = np.vstack([ref.vectors[ref.train], synthetic_vectors])
    targets = np.concatenate([ref.targets[ref.train], synthetic_targets.astype(ref.targets.dtype)])
    classifier = Classifier(*fit(vectors, targets, settings.random_state))
    metrics = evaluate(classifier, ref.vectors[ref.holdout], ref.targets[ref.holdout])
    manifest = ArtifactStore(settings.artifacts_dir).save(
        embedding,
        classifier,
        rows={
            "ref": len(ref.train),
            "synthetic": len(synthetic_vectors),
            "prod": 0,
            "prod_seen": 0,
            "total": len(vectors),
        },
        metrics={"holdout": metrics, "seconds": round(time.perf_counter() - started, 2)},
        reason="initial training",
        extra={"dataset": dataset.name, "format": vars(dataset.format)},
    )
    _prune(ArtifactStore(settings.artifacts_dir), settings)
    log.info("saved artifacts version %d: holdout %s", manifest.version, metrics)
    return manifest


def read_prod_training_rows(
    path: Path, n_components: int, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The newest `limit` production rows (vectors, targets, keys), and how many rows
    the file held when read. A row's key is its prediction_id (its line number when it
    has none): what the gate's feedback hold-out is chosen by."""
    columns = [*feature_columns(n_components), "target"]
    frame = ProdDataStore(path, n_components).read([*columns, "prediction_id"])
    frame = frame.dropna(subset=columns)
    ids = frame["prediction_id"].astype("string").fillna("")
    keys = np.where(ids == "", [f"row-{i}" for i in frame.index], ids).astype(object)
    seen = len(frame)
    frame, keys = (frame.tail(limit), keys[-limit:]) if limit > 0 else (frame.iloc[:0], keys[:0])
    return frame[columns[:-1]].to_numpy(dtype=np.float64), frame["target"].to_numpy(), keys, seen


def _same_label_type(targets: np.ndarray, like: np.ndarray) -> np.ndarray:
    """CSV targets come back as the type pandas guesses; match the reference's."""
    if np.issubdtype(like.dtype, np.integer):
        return targets.astype(like.dtype)
    return targets.astype(str)


def _same_rows(vectors: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which of `vectors` equal a row of `others` (to 6 decimals: the same image file
    embeds to the same vector within 1e-12)."""
    seen = {row.tobytes() for row in np.round(others, 6)}
    return np.array([row.tobytes() in seen for row in np.round(vectors, 6)], dtype=bool)


def _prune(store: ArtifactStore, settings: PipelineSettings) -> None:
    removed = store.prune(settings.keep_versions)
    if removed:
        log.info("pruned artifact versions %s (KEEP_VERSIONS=%d)", removed, settings.keep_versions)


def _best_reference(store: ArtifactStore) -> dict[str, float] | None:
    """The best reference hold-out figures of any version that went live (the
    reference hold-out is frozen, so every manifest's figures compare)."""
    best: dict[str, float] = {}
    for entry in store.history():
        gate = entry.get("gate") or {}
        if gate and not gate.get("accepted", True):
            continue
        for name, value in (entry["metrics"].get("holdout") or {}).items():
            if name in JUDGED:
                best[name] = max(best.get(name, 0.0), value)
    return best or None


def retrain(settings: PipelineSettings, reason: str = "retraining") -> Manifest:
    """New scaler + classifier on ref (training split) + prod rows; the embedding
    stays frozen. Writes a new artifact version, which goes live only if it passes
    the promotion gate (mlstack.gate) against the version in use."""
    started = time.perf_counter()
    store = ArtifactStore(settings.artifacts_dir)
    current = store.load()
    n = current.embedding.n_components
    ref = read_reference(settings, n)
    ref_vectors, ref_targets = ref.vectors[ref.train], ref.targets[ref.train]
    synthetic_vectors, synthetic_targets = read_synthetic(settings, n)
    synthetic_targets = _same_label_type(synthetic_targets, ref_targets)
    room = max(0, settings.max_training_rows - len(ref_vectors) - len(synthetic_vectors))
    prod_vectors, prod_targets, prod_keys, prod_seen = read_prod_training_rows(
        settings.prod_data_path, n, room
    )
    prod_targets = _same_label_type(prod_targets, ref_targets)
    # Feedback rows of the gate's hold-out are never trained on: they judge. Nor are
    # images of the reference hold-out sent back as feedback (the web app's samples
    # are such images): trained on, they would flatter the candidate that the
    # reference hold-out judges.
    held = in_feedback_holdout(prod_keys, settings.gate_feedback_share if settings.gate else 0)
    if settings.gate:
        held |= _same_rows(prod_vectors, ref.vectors[ref.holdout])
    eval_sets = {
        "reference": (ref.vectors[ref.holdout], ref.targets[ref.holdout]),
        "feedback": (prod_vectors[held], prod_targets[held]),
    }

    def candidate(train: np.ndarray) -> tuple[Classifier, dict, int]:
        vectors = np.vstack([ref_vectors, synthetic_vectors, prod_vectors[train]])
        targets = np.concatenate([ref_targets, synthetic_targets, prod_targets[train]])
        classifier = Classifier(*fit(vectors, targets, settings.random_state))
        figures = {part: evaluate(classifier, *data) for part, data in eval_sets.items()}
        return classifier, figures, len(vectors)

    train = ~held
    classifier, figures, total = candidate(train)
    # Contested rows: feedback whose label the version in use disagrees with. A burst
    # of them is the signature of a mistake or an attack, but a real correction looks
    # the same, so they are trained on; only when that candidate fails the gate is a
    # second one trained without them (the rows stay stored, and are counted).
    contested = np.zeros(len(prod_targets), dtype=bool)
    if len(prod_targets):
        contested = current.classifier.predict(prod_vectors) != prod_targets
    decision: dict = {"accepted": True, "reason": "gate off", "candidate": figures}
    if settings.gate:
        champion = {part: evaluate(current.classifier, *data) for part, data in eval_sets.items()}
        rules = GateRules(
            settings.gate_tolerance, settings.gate_floor, settings.gate_min_feedback_rows
        )
        best = _best_reference(store)
        decision = judge(figures, champion, rules, best).to_dict()
        if not decision["accepted"] and (train & contested).any():
            log.info("candidate rejected (%s): retrying without contested rows", decision["reason"])
            second_train = ~held & ~contested
            second = candidate(second_train)
            retry = judge(second[1], champion, rules, best).to_dict()
            retry["first_try"] = decision
            decision = retry
            if retry["accepted"]:
                (classifier, figures, total), train = second, second_train
        decision["champion_version"] = current.version
        decision["trained_on_contested"] = bool((train & contested).any())
    seconds = round(time.perf_counter() - started, 2)
    manifest = store.save(
        current.embedding,
        classifier,
        # prod_seen: the rows prod_data.csv held, so a restart can tell a missed retraining.
        rows={
            "ref": len(ref_vectors),
            "synthetic": len(synthetic_vectors),
            "prod": int(train.sum()),
            "prod_holdout": int(held.sum()),
            "prod_contested": int(contested.sum()),
            "prod_seen": prod_seen,
            "total": total,
        },
        metrics={
            "holdout": figures["reference"],
            "feedback": figures["feedback"],
            "seconds": seconds,
        },
        reason=reason,
        extra=current.manifest.extra,
        gate=decision,
        base_version=current.version,  # refused if a newer version went live meanwhile
    )
    _prune(store, settings)
    log.info(
        "retrained on %d ref + %d prod rows in %.1fs -> version %d, holdout %s; gate: %s (%s)",
        len(ref_vectors),
        int(train.sum()),
        seconds,
        manifest.version,
        figures["reference"],
        "accepted" if decision["accepted"] else "REJECTED",
        decision["reason"],
    )
    return manifest


def _retrain_job(settings_json: str, reason: str, niceness: int) -> Manifest:
    if niceness:
        os.nice(niceness)
    setup_logging()
    return retrain(PipelineSettings.model_validate_json(settings_json), reason=reason)


def retrain_isolated(settings: PipelineSettings, reason: str, niceness: int = 10) -> Manifest:
    """`retrain` in a fresh process at a lower CPU priority, so that a server calling it
    keeps its own CPU time and interpreter lock for the requests it serves. The process
    dies with its caller: a server killed mid-retraining leaves nothing running."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=1, mp_context=spawn, initializer=die_with_parent, initargs=(os.getpid(),)
    ) as pool:
        job = pool.submit(_retrain_job, settings.model_dump_json(), reason, niceness)
        return job.result()


def export_samples(settings: PipelineSettings, per_label: int = 5) -> list[Path]:
    """Save held-out images (never used for training) as files a user can upload,
    named <label>_<row>.png where row is their row in ref_data.csv."""
    dataset = _dataset(settings)
    _, holdout = holdout_split(dataset.labels, settings.holdout_fraction, settings.random_state)
    out = settings.samples_dir
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for label in dataset.classes:
        rows = [i for i in holdout if dataset.labels[i] == label][:per_label]
        for row in rows:
            path = out / f"{label}_{row:04d}.png"
            path.write_bytes(grid_to_png(dataset.grids[row]))
            written.append(path)
    log.info("wrote %d sample images to %s", len(written), out)
    return written


def bootstrap(settings: PipelineSettings, *, force: bool = False) -> ArtifactSet:
    """Make sure ref_data.csv, the artifacts and sample images exist; build what is
    missing. Returns the artifact set in use."""
    store = ArtifactStore(settings.artifacts_dir)
    store.clean_staging()
    if force or not store.exists() or not settings.ref_data_path.exists():
        log.info("no artifacts in %s yet: building reference data and training", store.root)
        train_initial(settings)
    if not settings.samples_dir.is_dir() or not any(settings.samples_dir.iterdir()):
        export_samples(settings)
    ProdDataStore(settings.prod_data_path, store.manifest().n_components).repair()
    return store.load()
