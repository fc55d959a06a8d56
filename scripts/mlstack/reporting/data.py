"""What a report run reads: the reference, the feedback, and the batches cut from it.

Reference classification quality: ref_data.csv has no prediction column, so the model
in use (artifacts/) predicts the reference rows. Those rows are the model's training
data, so the reference figures are its fit on what it learnt from (an upper bound),
not a held-out score; without artifacts the reference side of classification is left
out, and the run says so.

The retraining loop: each batch's rows are flagged contested and in a burst with
mlstack.feedback's own masks (`feedback_flags`), and the gate decisions are read from
the artifact manifests (`gate_history`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ..artifacts import ArtifactSet
from ..feedback import FeedbackRows, burst_mask, contested_mask
from ..prod_store import LABEL_COLUMNS, METADATA_COLUMNS
from ..settings import PipelineSettings, ReportingSettings
from ..stores import fetch_reference_files, open_artifact_store, open_prod_store
from ..tabular import TableEmbedding

log = logging.getLogger(__name__)


def read_reference(settings: ReportingSettings) -> tuple[pd.DataFrame, list[str]]:
    """ref_data.csv's embedding columns and target (a fixed sample beyond
    REPORT_MAX_REFERENCE_ROWS), and the names of the embedding columns."""
    path = settings.ref_data_path
    fetch_reference_files(settings)  # with DATABASE_URL: a job's empty DATA_DIR
    try:
        # round_trip: the values read back are exactly those written (stable fingerprints)
        ref = pd.read_csv(path, float_precision="round_trip")
    except (FileNotFoundError, pd.errors.EmptyDataError):
        ref = pd.DataFrame()
    if "target" not in ref.columns:
        raise FileNotFoundError(
            f"{path} is missing or has no target column: "
            "run scripts/bootstrap.py (the serving API runs it on its first start)"
        )
    features = [c for c in ref.columns if c.startswith("PCA_")]
    if len(ref) > settings.report_max_reference_rows:
        ref = ref.sample(settings.report_max_reference_rows, random_state=0).sort_index()
        log.info("reference: a fixed sample of %d of its rows", len(ref))
    return ref[[*features, "target"]].reset_index(drop=True), features


def read_feedback(settings: ReportingSettings, features: list[str]) -> pd.DataFrame:
    """prod_data.csv's rows in file order (none yet: an empty frame)."""
    prod = open_prod_store(settings, len(features)).read()
    if prod.empty:
        log.info("no feedback yet (%s is missing or has no rows)", settings.prod_data_path)
        prod = pd.DataFrame(columns=[*features, *LABEL_COLUMNS, *METADATA_COLUMNS])
    missing = [c for c in (*features, *LABEL_COLUMNS) if c not in prod.columns]
    if missing:
        raise ValueError(
            f"{settings.prod_data_path} lacks columns {missing[:5]}: it does not match "
            f"ref_data.csv ({len(features)} components)"
        )
    return prod.reset_index(drop=True)


def predict_reference(
    settings: ReportingSettings, ref: pd.DataFrame, features: list[str]
) -> ArtifactSet | None:
    """Add the model's predictions to the reference rows, and answer the loaded artifacts
    (None, and no prediction column, when there is no model)."""
    try:
        artifacts = open_artifact_store(settings).load()
        if artifacts.embedding.n_components != len(features):
            raise ValueError(
                f"the model takes {artifacts.embedding.n_components} components, "
                f"ref_data.csv has {len(features)}"
            )
    except Exception as exc:  # no model: drift still works, reference quality is left out
        log.warning("no reference classification quality (%s)", exc)
        return None
    ref["prediction"] = artifacts.classifier.predict(ref[features].to_numpy())
    log.info("reference predictions from model version %d", artifacts.version)
    return artifacts


def add_table_columns(
    embedding: object, ref: pd.DataFrame, prod: pd.DataFrame, features: list[str]
) -> dict[str, str]:
    """For a table data set (DATASET_CSV), its own columns beside the PCA ones, on both
    sides, read back from the vectors (TableEmbedding.columns_back): drift there tells
    which measured quantity moved, which the PCA columns do not. Answers column ->
    "number" or "category" (none for images). A column whose name the report already
    uses (PCA_1, target, ...) gets a "raw_" prefix."""
    if not isinstance(embedding, TableEmbedding):
        return {}
    taken = {*ref.columns, *prod.columns}
    names = {
        spec.name: f"raw_{spec.name}" if spec.name in taken else spec.name
        for spec in embedding.schema.columns
    }
    for side in (ref, prod):
        back = embedding.columns_back(side[features].to_numpy(dtype=np.float64))
        for column, name in names.items():
            side[name] = back[column].to_numpy()
    return {names[spec.name]: spec.type for spec in embedding.schema.columns}


def fingerprint(frame: pd.DataFrame) -> str:
    """Of the values (rounded: a file rewritten by another tool keeps its fingerprint)."""
    hashed = pd.util.hash_pandas_object(frame.round(9), index=False)
    return f"{int(hashed.sum()) & (2**64 - 1):016x}"


@dataclass(frozen=True)
class BurstRule:
    """CONTESTED_BURST_SHARE and GATE_MIN_FEEDBACK_ROWS, as retraining reads them."""

    share: float
    min_rows: int

    @classmethod
    def from_environment(cls, settings: ReportingSettings) -> BurstRule:
        pipeline = PipelineSettings(
            project_root=settings.project_root,
            data_dir=settings.data_dir,
            artifacts_dir=settings.artifacts_dir,
        )
        return cls(pipeline.contested_burst_share, pipeline.gate_min_feedback_rows)


FLAG_COLUMNS = ("contested", "burst")


def feedback_flags(rows: pd.DataFrame, features: list[str], rule: BurstRule) -> pd.DataFrame:
    """0/1 columns `contested` and `burst` for `rows`, by mlstack.feedback's masks, the
    ones retraining uses, applied to these rows (a burst: over `rule.share` of the rows
    one model version answered here are contested, over at least `rule.min_rows` rows).
    A row without a target or a prediction is neither."""
    flags = pd.DataFrame(dict.fromkeys(FLAG_COLUMNS, 0), index=rows.index)
    labelled = rows.dropna(subset=[*features, *LABEL_COLUMNS])
    if labelled.empty:
        return flags
    versions = labelled.get("model_version", pd.Series(0, index=labelled.index))
    feedback = FeedbackRows(
        vectors=labelled[features].to_numpy(dtype=np.float64),
        targets=labelled["target"].to_numpy(),
        predictions=labelled["prediction"].to_numpy(),
        versions=pd.to_numeric(versions, errors="coerce").fillna(0).to_numpy(int),
        keys=labelled.index.to_numpy(),
        seen=len(labelled),
    )
    contested = contested_mask(feedback)
    burst = burst_mask(contested, feedback.versions, rule.share, rule.min_rows)
    flags.loc[labelled.index, "contested"] = contested.astype(int)
    flags.loc[labelled.index, "burst"] = burst.astype(int)
    return flags


def gate_history(settings: ReportingSettings) -> list[dict]:
    """The artifact versions whose manifest holds a gate decision (every retraining;
    the first model has none), oldest first. No artifacts: none."""
    try:
        history = open_artifact_store(settings).history()
    except OSError as exc:
        log.warning("no gate decisions (%s)", exc)
        return []
    return [entry for entry in history if entry.get("gate")]


@dataclass
class Inputs:
    features: list[str]
    reference: pd.DataFrame  # features, target, and prediction when a model was loaded
    reference_has_prediction: bool
    prod: pd.DataFrame  # feedback rows, in file order
    table_columns: dict[str, str]  # a table's own columns (both frames hold them) -> kind
    reference_key: str  # ref_data.csv's rows and the burst rule: a change redoes every batch
    burst_rule: BurstRule
    gate: list[dict]  # ArtifactStore.history() entries with a gate decision


def load_inputs(settings: ReportingSettings) -> Inputs:
    ref, features = read_reference(settings)
    artifacts = predict_reference(settings, ref, features)
    prod = read_feedback(settings, features)
    table = add_table_columns(artifacts and artifacts.embedding, ref, prod, features)
    rule = BurstRule.from_environment(settings)
    key = fingerprint(ref[[*features, "target"]]) + f":{len(ref)}"
    key += f":burst {rule.share:g}/{rule.min_rows}"
    if table:  # snapshots made before the table's columns were reported are redone
        key += ":table " + ",".join(table)
    return Inputs(
        features, ref, artifacts is not None, prod, table, key, rule, gate_history(settings)
    )


@dataclass
class Batch:
    index: int
    start: int
    stop: int  # rows [start, stop) of prod_data.csv
    rows: pd.DataFrame
    complete: bool

    @property
    def key(self) -> str:
        return f"{self.index:06d}"

    @property
    def time(self) -> datetime:
        """The newest feedback time in the batch; now when the rows carry none."""
        if "timestamp" in self.rows.columns:
            stamps = pd.to_datetime(self.rows["timestamp"], utc=True, errors="coerce").dropna()
            if not stamps.empty:
                return stamps.max().to_pydatetime()
        return datetime.now(UTC)


def batch_size(rows: int, settings: ReportingSettings) -> int:
    """REPORT_BATCH_ROWS, doubled until the rows make at most REPORT_MAX_BATCHES batches."""
    size = settings.report_batch_rows
    while math.ceil(rows / size) > settings.report_max_batches:
        size *= 2
    return size


def split_batches(prod: pd.DataFrame, size: int, settings: ReportingSettings) -> list[Batch]:
    batches = []
    for index, start in enumerate(range(0, len(prod), size)):
        stop = min(start + size, len(prod))
        complete = stop - start == size
        if not complete and stop - start < settings.report_min_rows:
            log.info(
                "the last %d feedback rows wait for %d before their snapshot",
                stop - start,
                settings.report_min_rows,
            )
            continue
        batches.append(Batch(index, start, stop, prod.iloc[start:stop], complete))
    return batches
