"""The steps that produce data and models: the reference data, the first training and
sample images. Retraining on reference + production data is mlstack.retraining."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from .archive import (
    DatasetSwitchError,
    archive_for_switch,
    dataset_identity,
    describe,
    is_switch,
    recorded_identity,
)
from .artifacts import ArtifactSet, ArtifactStore, Manifest
from .augment import training_grids
from .dataset import Dataset, load_dataset
from .embedding import Embedding, feature_columns
from .preprocessing import grid_to_png
from .settings import PipelineSettings
from .stores import (
    fetch_reference_files,
    open_artifact_store,
    open_prod_store,
    publish_reference_files,
    uses_database,
)
from .tabular import TableDataset, TableEmbedding, load_table
from .training import Classifier, evaluate, fit, holdout_split

log = logging.getLogger(__name__)

PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}


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
        image_features=settings.image_features,
        image_model=settings.image_model,
        **(
            {}
            if settings.dataset_dir is None
            else {"max_bytes": settings.max_upload_bytes, "max_pixels": settings.max_image_pixels}
        ),
    )
    log.info("data set %s: %d images, %d labels", dataset.name, len(dataset), len(dataset.classes))
    return dataset


def _table(settings: PipelineSettings) -> TableDataset:
    table = load_table(settings.dataset_csv, settings.target_column)
    log.info(
        "table %s: %d rows, %d feature columns (%d numeric, %d categorical), %d labels",
        table.name,
        len(table),
        len(table.schema.columns),
        len(table.schema.numeric),
        len(table.schema.categorical),
        len(table.classes),
    )
    return table


def build_table_reference(
    settings: PipelineSettings, table: TableDataset | None = None
) -> tuple[TableDataset, TableEmbedding, Reference]:
    """A table's embedding (preprocessing + PCA) fitted on its training split, and
    data/ref_data.csv (PCA_1..PCA_n, target) for every row of the table."""
    table = table or _table(settings)
    train, holdout = holdout_split(table.labels, settings.holdout_fraction, settings.random_state)
    embedding = TableEmbedding.fit(
        table.features.iloc[train], table.schema, settings.n_components, settings.random_state
    )
    vectors = embedding.transform_frame(table.features)
    _write_vectors(settings.ref_data_path, vectors, table.labels, embedding.columns)
    log.info(
        "wrote %s: %d rows x %d components (%d encoded features, %.1f%% of the variance)",
        settings.ref_data_path,
        len(vectors),
        embedding.n_components,
        embedding.n_features,
        100 * embedding.explained_variance_ratio.sum(),
    )
    return table, embedding, Reference(vectors, table.labels, train, holdout)


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
    fit_inputs = dataset.inputs[train]
    if extra_grids is not None and len(extra_grids):
        fit_inputs = np.concatenate([fit_inputs, extra_grids])
    embedding = Embedding.fit(
        fit_inputs, dataset.format, settings.n_components, settings.random_state, dataset.photo
    )
    vectors = embedding.transform(dataset.inputs)
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
    if settings.dataset_dir is not None or (
        settings.synthetic_per_label == 0 and settings.printed_per_label == 0
    ):
        return np.empty((0, *dataset.format.shape)), np.empty(0, dtype=int)
    return training_grids(
        settings.synthetic_per_label,
        settings.random_state,
        dataset.format,
        printed_per_label=settings.printed_per_label,
    )


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


def train_initial_table(settings: PipelineSettings) -> Manifest:
    """DATASET_CSV -> ref_data.csv -> scaler + classifier -> artifacts version 1 (or
    next); the manifest's `extra` records the kind and the schema of the table."""
    started = time.perf_counter()
    table, embedding, ref = build_table_reference(settings)
    settings.synthetic_data_path.unlink(missing_ok=True)  # synthetic digits are for digits
    classifier = Classifier(
        *fit(ref.vectors[ref.train], ref.targets[ref.train], settings.random_state)
    )
    return _save_initial(
        settings,
        embedding,
        classifier,
        ref,
        synthetic=0,
        started=started,
        extra={
            "dataset": table.name,
            "dataset_id": dataset_identity(settings),
            "kind": "table",
            "encoded_features": embedding.n_features,
            "schema": table.schema.to_dict(),
        },
    )


def _save_initial(
    settings: PipelineSettings,
    embedding: Embedding | TableEmbedding,
    classifier: Classifier,
    ref: Reference,
    *,
    synthetic: int,
    started: float,
    extra: dict,
) -> Manifest:
    """Evaluate on the reference hold-out, save as the next version, prune: the end of
    every first training (images or table)."""
    metrics = evaluate(classifier, ref.vectors[ref.holdout], ref.targets[ref.holdout])
    publish_reference_files(settings)  # with a database, for nodes without a copy
    manifest = open_artifact_store(settings).save(
        embedding,
        classifier,
        rows={
            "ref": len(ref.train),
            "synthetic": synthetic,
            "prod": 0,
            "prod_seen": 0,
            "total": len(ref.train) + synthetic,
        },
        metrics={"holdout": metrics, "seconds": round(time.perf_counter() - started, 2)},
        reason="initial training",
        extra=extra,
    )
    prune(open_artifact_store(settings), settings)
    log.info("saved artifacts version %d: holdout %s", manifest.version, metrics)
    return manifest


def train_initial(settings: PipelineSettings) -> Manifest:
    """Data set -> ref_data.csv -> scaler + classifier -> artifacts version 1 (or next)."""
    if settings.is_table:
        return train_initial_table(settings)
    started = time.perf_counter()
    dataset = _dataset(settings)
    synthetic, synthetic_targets = _synthetic_grids(settings, dataset)
    dataset, embedding, ref = build_reference(settings, dataset, synthetic)
    synthetic_vectors = _write_synthetic(settings, embedding, synthetic, synthetic_targets)
    vectors = np.vstack([ref.vectors[ref.train], synthetic_vectors])
    targets = np.concatenate([ref.targets[ref.train], synthetic_targets.astype(ref.targets.dtype)])
    classifier = Classifier(*fit(vectors, targets, settings.random_state))
    return _save_initial(
        settings,
        embedding,
        classifier,
        ref,
        synthetic=len(synthetic_vectors),
        started=started,
        extra={
            "dataset": dataset.name,
            "dataset_id": dataset_identity(settings),
            "kind": "images",
            "format": vars(dataset.format),
            **({"image_features": dataset.photo.summary()} if dataset.photo else {}),
        },
    )


def prune(store: ArtifactStore, settings: PipelineSettings) -> None:
    """Old artifact versions removed past KEEP_VERSIONS (mlstack.artifacts.prune)."""
    removed = store.prune(settings.keep_versions)
    if removed:
        log.info("pruned artifact versions %s (KEEP_VERSIONS=%d)", removed, settings.keep_versions)


def export_samples(settings: PipelineSettings, per_label: int = 5) -> list[Path]:
    """Save held-out images (never used for training) as files a user can upload,
    named <label>_<row>.png where row is their row in ref_data.csv. For a table:
    data/samples/samples.csv, held-out rows with their label."""
    if settings.is_table:
        return [export_table_samples(settings, per_label)]
    dataset = _dataset(settings)
    _, holdout = holdout_split(dataset.labels, settings.holdout_fraction, settings.random_state)
    out = settings.samples_dir
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for label in dataset.classes:
        rows = [i for i in holdout if dataset.labels[i] == label][:per_label]
        for row in rows:
            path = out / f"{label}_{row:04d}.png"
            if dataset.photo is None:
                path.write_bytes(grid_to_png(dataset.inputs[row]))
            else:  # a photo's features are no picture: the file itself, as a PNG
                with Image.open(dataset.files[row]) as image:
                    image = ImageOps.exif_transpose(image)
                    if image.mode not in PNG_MODES:  # CMYK, YCbCr...
                        image = image.convert("RGB")
                    image.save(path, format="PNG")
            written.append(path)
    log.info("wrote %d sample images to %s", len(written), out)
    return written


def export_table_samples(settings: PipelineSettings, per_label: int = 5) -> Path:
    table = _table(settings)
    _, holdout = holdout_split(table.labels, settings.holdout_fraction, settings.random_state)
    picked = []
    for label in table.classes:
        picked += [int(i) for i in holdout if table.labels[i] == label][:per_label]
    frame = table.features.iloc[picked].copy()
    frame[table.schema.target] = table.labels[picked]
    frame.insert(0, "ref_row", picked)
    path = settings.samples_dir / "samples.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)  # the table's own numbers, as a client sends them
    log.info("wrote %d held-out rows to %s", len(frame), path)
    return path


def switch_if_needed(settings: PipelineSettings, store: Any, *, switch: bool) -> bool:
    """When the artifacts were trained on another data set than the settings name: with
    `switch`, put aside what belonged to it (mlstack.archive) and answer True, everything
    is to be built again; without, refuse, saying how to switch. With a database,
    refuse either way: its rows and versions are not files to move."""
    if not store.exists():
        return False
    recorded = recorded_identity(store.manifest().extra)
    wanted = dataset_identity(settings)
    if not is_switch(recorded, wanted):
        return False
    assert recorded is not None  # is_switch says so
    change = (
        f"the model in use was trained on the {describe(recorded)}, and the settings name "
        f"the {describe(wanted)}"
    )
    if uses_database(settings):
        raise DatasetSwitchError(
            f"{change}; the database (DATABASE_URL) holds the old one's feedback rows and "
            "model versions. Rows of one data set mean nothing to a model of another, and "
            "they are not moved out of a database: point DATABASE_URL at a new, empty "
            "database for the new data set (export the old rows first if you want them: "
            "python scripts/export_prod.py), or set DATASET_DIR / DATASET_CSV back"
        )
    if not switch:
        # A start with a forgotten DATASET_DIR must not put a user's work aside.
        raise DatasetSwitchError(
            f"{change}. To switch, run `python scripts/bootstrap.py` with these settings "
            "(in Docker: `make switch`): it moves the old data set's feedback rows, samples, "
            "models and reports into DATA_DIR/archive/ and trains on the new one. Or set "
            "DATASET_DIR / DATASET_CSV back"
        )
    log.warning("%s: putting aside what belonged to the old one, then training", change)
    archive_for_switch(settings, recorded)
    return True


def bootstrap(
    settings: PipelineSettings, *, force: bool = False, switch: bool = False
) -> ArtifactSet:
    """Make sure ref_data.csv, the artifacts and sample images exist for the data set
    the settings name; build what is missing. `force` trains again (a new version) on the
    same data set, keeping its feedback rows. When the artifacts were trained on another
    data set: with `switch` (scripts/bootstrap.py), what belonged to the old one is moved
    into DATA_DIR/archive/ and everything is built for the new one; without (the API's
    start), DatasetSwitchError says so. Returns the artifact set in use."""
    store = open_artifact_store(settings)
    store.clean_staging()
    switched = switch_if_needed(settings, store, switch=switch)
    if not force and store.exists():
        fetch_reference_files(settings)  # with a database: a new replica's empty DATA_DIR
    if force or switched or not store.exists() or not settings.ref_data_path.exists():
        log.info("building reference data and training in %s", store.root)
        train_initial(settings)
    if not settings.samples_dir.is_dir() or not any(settings.samples_dir.iterdir()):
        export_samples(settings)
    open_prod_store(settings, store.manifest().n_components).repair()
    return store.load()
