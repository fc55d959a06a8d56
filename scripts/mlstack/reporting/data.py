"""What a report run reads: the reference, the feedback, and the batches cut from it.

Reference classification quality: ref_data.csv has no prediction column, so the model
in use (artifacts/) predicts the reference rows. Those rows are the model's training
data, so the reference figures are its fit on what it learnt from (an upper bound),
not a held-out score; without artifacts the reference side of classification is left
out, and the run says so.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from ..artifacts import ArtifactStore
from ..prod_store import LABEL_COLUMNS, METADATA_COLUMNS, ProdDataStore
from ..settings import ReportingSettings

log = logging.getLogger(__name__)


def read_reference(settings: ReportingSettings) -> tuple[pd.DataFrame, list[str]]:
    """ref_data.csv's embedding columns and target (a fixed sample beyond
    REPORT_MAX_REFERENCE_ROWS), and the names of the embedding columns."""
    path = settings.ref_data_path
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
    prod = ProdDataStore(settings.prod_data_path, len(features)).read()
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


def predict_reference(settings: ReportingSettings, ref: pd.DataFrame, features: list[str]) -> bool:
    """Add the model's predictions to the reference rows; False when there is no model."""
    try:
        artifacts = ArtifactStore(settings.artifacts_dir).load()
        if artifacts.embedding.n_components != len(features):
            raise ValueError(
                f"the model takes {artifacts.embedding.n_components} components, "
                f"ref_data.csv has {len(features)}"
            )
    except Exception as exc:  # no model: drift still works, reference quality is left out
        log.warning("no reference classification quality (%s)", exc)
        return False
    ref["prediction"] = artifacts.classifier.predict(ref[features].to_numpy())
    log.info("reference predictions from model version %d", artifacts.version)
    return True


def fingerprint(frame: pd.DataFrame) -> str:
    """Of the values (rounded: a file rewritten by another tool keeps its fingerprint)."""
    hashed = pd.util.hash_pandas_object(frame.round(9), index=False)
    return f"{int(hashed.sum()) & (2**64 - 1):016x}"


@dataclass
class Inputs:
    features: list[str]
    reference: pd.DataFrame  # features, target, and prediction when a model was loaded
    reference_has_prediction: bool
    prod: pd.DataFrame  # feedback rows, in file order
    reference_key: str


def load_inputs(settings: ReportingSettings) -> Inputs:
    ref, features = read_reference(settings)
    has_prediction = predict_reference(settings, ref, features)
    prod = read_feedback(settings, features)
    key = fingerprint(ref[[*features, "target"]]) + f":{len(ref)}"
    return Inputs(features, ref, has_prediction, prod, key)


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
