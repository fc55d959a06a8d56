"""The Evidently project of the deployed classifier: data drift and classification quality.

`python project.py` creates (or brings up to date) a local Evidently workspace with one
project, whose reference is data/ref_data.csv and whose current data is the feedback in
data/prod_data.csv. The feedback is cut into batches of REPORT_BATCH_ROWS rows in file
order; each batch becomes one snapshot, timestamped with the newest feedback time in it,
so the dashboard shows how drift and quality move over time. Which batches are already
in is kept beside the project (batches.json, with a fingerprint of each batch's rows): a
re-run adds only what is new, redoes a batch whose rows changed, and replaces the
snapshot of the last, still filling batch as it grows.

`python project.py --every 60` (or REPORT_EVERY_SECONDS=60) repeats that every minute,
so the running `evidently ui` shows new feedback without a restart.

Reference classification quality: ref_data.csv has no prediction column, so the model in
use (artifacts/) predicts the reference rows. Those rows are the model's training data,
so the reference figures are its fit on what it learnt from (an upper bound), not a
held-out score; without artifacts the reference side of classification is left out.

Multiclass guard: Evidently 0.7's own F1Score/Precision/Recall/Accuracy switch to binary
maths when a batch holds exactly two labels (and fail when these are not 0 and 1). The
headline figures are therefore computed by the metrics below, which always average over
the labels present in the batch, as scikit-learn's `average="macro"` does; the per-class
figures and the confusion matrix are Evidently's own.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, MulticlassClassification, Report
from evidently.core.metric_types import (
    SingleValue,
    SingleValueCalculation,
    SingleValueMetric,
    get_default_render,
    get_default_render_ref,
)
from evidently.core.report import Context, _default_input_data_generator
from evidently.legacy.metrics import ClassificationConfusionMatrix
from evidently.metrics import F1ByLabel, PrecisionByLabel, RecallByLabel, RowCount
from evidently.presets import DataDriftPreset
from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import bar_plot_panel, counter_panel, line_plot_panel, text_panel
from evidently.ui.workspace import Project, Workspace
from mlstack.logs import setup_logging
from mlstack.settings import PipelineSettings
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

log = logging.getLogger("reporting")

REPORTING_DIR = Path(__file__).resolve().parent
STATE_FILE = "batches.json"
META_COLUMNS = ("timestamp", "model_version", "prediction_id")
DASHBOARD_VERSION = "1"  # bump when the panels below change: the dashboard is then rebuilt


class ReportingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    workspace_dir: Path = Field(
        default=REPORTING_DIR / "workspace", description="Evidently workspace (WORKSPACE_DIR)"
    )
    project_name: str = Field(default="Deployed classifier", alias="REPORT_PROJECT_NAME")
    batch_rows: int = Field(
        default=100, ge=1, alias="REPORT_BATCH_ROWS", description="Feedback rows per snapshot"
    )
    max_batches: int = Field(
        default=60,
        ge=2,
        alias="REPORT_MAX_BATCHES",
        description="Past this many batches the batch size doubles (and batches are redone), "
        "so the number of snapshots stays bounded",
    )
    min_rows: int = Field(
        default=10,
        ge=1,
        alias="REPORT_MIN_ROWS",
        description="A batch still filling gets a snapshot once it holds this many rows",
    )
    max_new_snapshots: int = Field(
        default=10,
        ge=1,
        alias="REPORT_MAX_NEW_SNAPSHOTS",
        description="Snapshots made per run, newest batches first; the rest come next run",
    )
    max_reference_rows: int = Field(
        default=5000,
        ge=100,
        alias="REPORT_MAX_REFERENCE_ROWS",
        description="Reference rows used (a fixed random sample beyond it)",
    )
    every_seconds: float = Field(
        default=0, ge=0, alias="REPORT_EVERY_SECONDS", description="0: run once"
    )


# -- multiclass metrics --------------------------------------------------------------------
# Each computes one scikit-learn score over the labels present in the rows it is given.


def _label_columns(dataset: Dataset | None, context: Context) -> tuple[pd.Series, pd.Series] | None:
    classification = context.data_definition.get_classification("default")
    if dataset is None or classification is None:
        return None
    frame = dataset.as_dataframe()
    target, prediction = classification.target, classification.prediction_labels
    if target not in frame.columns or prediction not in frame.columns:
        return None
    rows = frame[[target, prediction]].dropna()
    if rows.empty:
        return None
    return rows[target], rows[prediction]


def _score(fn: Callable[[pd.Series, pd.Series], float], labels) -> float | None:
    if labels is None:
        return None
    with warnings.catch_warnings():
        # a class predicted but absent from the batch: scikit-learn warns and counts 0
        warnings.simplefilter("ignore")
        return float(fn(*labels))


SCORES: dict[str, tuple[str, Callable[[pd.Series, pd.Series], float]]] = {
    "MulticlassAccuracy": ("Accuracy", skm.accuracy_score),
    "MulticlassF1": ("F1 (macro)", lambda t, p: skm.f1_score(t, p, average="macro")),
    "MulticlassPrecision": (
        "Precision (macro)",
        lambda t, p: skm.precision_score(t, p, average="macro", zero_division=0),
    ),
    "MulticlassRecall": (
        "Recall (macro)",
        lambda t, p: skm.recall_score(t, p, average="macro", zero_division=0),
    ),
    "BalancedAccuracy": ("Balanced accuracy", skm.balanced_accuracy_score),
}


class _MulticlassScore(SingleValueMetric):
    """Base of the multiclass scores: no default pass/fail tests, only the figure."""

    def _default_tests(self, context: Context) -> list:
        return []

    def _default_tests_with_reference(self, context: Context) -> list:
        return []


class MulticlassAccuracy(_MulticlassScore):
    pass


class MulticlassF1(_MulticlassScore):
    conf_matrix: bool = True


class MulticlassPrecision(_MulticlassScore):
    pass


class MulticlassRecall(_MulticlassScore):
    pass


class BalancedAccuracy(_MulticlassScore):
    pass


def _calculate(calc: SingleValueCalculation, context: Context, current, reference):
    name = type(calc.metric).__name__
    title, fn = SCORES[name]
    value = _score(fn, _label_columns(current, context))
    if value is None:
        raise ValueError(f"{name}: the current data has no target/prediction rows")
    ref_value = _score(fn, _label_columns(reference, context))
    cur = calc.result(value)
    ref = None if ref_value is None else calc.result(ref_value)
    cur.widget = (
        get_default_render(title, cur) if ref is None else get_default_render_ref(title, cur, ref)
    )
    if getattr(calc.metric, "conf_matrix", False):
        # Evidently's confusion matrix: correct for any number of labels.
        _, widgets = context.get_legacy_metric(
            ClassificationConfusionMatrix(), _default_input_data_generator, "default"
        )
        cur.widget += widgets
    return cur, ref


class MulticlassAccuracyCalculation(SingleValueCalculation[MulticlassAccuracy]):
    def calculate(self, context, current_data, reference_data) -> tuple[SingleValue, Any]:
        return _calculate(self, context, current_data, reference_data)

    def display_name(self) -> str:
        return SCORES["MulticlassAccuracy"][0]


class MulticlassF1Calculation(SingleValueCalculation[MulticlassF1]):
    def calculate(self, context, current_data, reference_data) -> tuple[SingleValue, Any]:
        return _calculate(self, context, current_data, reference_data)

    def display_name(self) -> str:
        return SCORES["MulticlassF1"][0]


class MulticlassPrecisionCalculation(SingleValueCalculation[MulticlassPrecision]):
    def calculate(self, context, current_data, reference_data) -> tuple[SingleValue, Any]:
        return _calculate(self, context, current_data, reference_data)

    def display_name(self) -> str:
        return SCORES["MulticlassPrecision"][0]


class MulticlassRecallCalculation(SingleValueCalculation[MulticlassRecall]):
    def calculate(self, context, current_data, reference_data) -> tuple[SingleValue, Any]:
        return _calculate(self, context, current_data, reference_data)

    def display_name(self) -> str:
        return SCORES["MulticlassRecall"][0]


class BalancedAccuracyCalculation(SingleValueCalculation[BalancedAccuracy]):
    def calculate(self, context, current_data, reference_data) -> tuple[SingleValue, Any]:
        return _calculate(self, context, current_data, reference_data)

    def display_name(self) -> str:
        return SCORES["BalancedAccuracy"][0]


def metric_type(cls: type) -> str:
    return f"evidently:metric_v2:{cls.__name__}"


# -- data ------------------------------------------------------------------------------------


def read_csv_whole_lines(path: Path) -> pd.DataFrame | None:
    """The CSV without a last line still being written (no newline yet); None if absent/empty."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    end = data.rfind(b"\n")
    if end < 0:
        return None
    try:
        # round_trip: the values read back are exactly those written (stable fingerprints)
        return pd.read_csv(BytesIO(data[: end + 1]), float_precision="round_trip")
    except pd.errors.EmptyDataError:
        return None


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


def load_reference(
    pipeline: PipelineSettings, settings: ReportingSettings
) -> tuple[pd.DataFrame, list[str], bool]:
    ref = read_csv_whole_lines(pipeline.ref_data_path)
    if ref is None or "target" not in ref.columns:
        raise FileNotFoundError(
            f"{pipeline.ref_data_path} is missing or has no target column: "
            "run scripts/bootstrap.py (the serving API runs it on its first start)"
        )
    features = [c for c in ref.columns if c.startswith("PCA_")]
    if len(ref) > settings.max_reference_rows:
        ref = ref.sample(settings.max_reference_rows, random_state=0).sort_index()
        log.info("reference: a fixed sample of %d of its rows", len(ref))
    ref = ref[[*features, "target"]].reset_index(drop=True)
    try:
        from mlstack.artifacts import ArtifactStore

        artifacts = ArtifactStore(pipeline.artifacts_dir).load()
        if artifacts.embedding.n_components != len(features):
            raise ValueError(
                f"the model takes {artifacts.embedding.n_components} components, "
                f"ref_data.csv has {len(features)}"
            )
        ref["prediction"] = artifacts.classifier.predict(ref[features].to_numpy())
        log.info("reference predictions from model version %d", artifacts.version)
        return ref, features, True
    except Exception as exc:  # no model: drift still works, reference quality is left out
        log.warning("no reference classification quality (%s)", exc)
        return ref, features, False


def load_inputs(pipeline: PipelineSettings, settings: ReportingSettings) -> Inputs:
    ref, features, has_prediction = load_reference(pipeline, settings)
    prod = read_csv_whole_lines(pipeline.prod_data_path)
    if prod is None or prod.empty:
        log.info("no feedback yet (%s is missing or has no rows)", pipeline.prod_data_path)
        prod = pd.DataFrame(columns=[*features, "target", "prediction", *META_COLUMNS])
    missing = [c for c in (*features, "target", "prediction") if c not in prod.columns]
    if missing:
        raise ValueError(
            f"{pipeline.prod_data_path} lacks columns {missing[:5]}: it does not match "
            f"ref_data.csv ({len(features)} components)"
        )
    key = fingerprint(ref[[*features, "target"]]) + f":{len(ref)}"
    return Inputs(features, ref, has_prediction, prod.reset_index(drop=True), key)


# -- batches and snapshots ---------------------------------------------------------------


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


def batch_size(rows: int, settings: ReportingSettings) -> int:
    """REPORT_BATCH_ROWS, doubled until the rows make at most REPORT_MAX_BATCHES batches."""
    size = settings.batch_rows
    while math.ceil(rows / size) > settings.max_batches:
        size *= 2
    return size


def split_batches(prod: pd.DataFrame, size: int, settings: ReportingSettings) -> list[Batch]:
    batches = []
    for index, start in enumerate(range(0, len(prod), size)):
        stop = min(start + size, len(prod))
        complete = stop - start == size
        if not complete and stop - start < settings.min_rows:
            log.info(
                "the last %d feedback rows wait for %d before their snapshot",
                stop - start,
                settings.min_rows,
            )
            continue
        batches.append(Batch(index, start, stop, prod.iloc[start:stop], complete))
    return batches


def batch_time(rows: pd.DataFrame) -> datetime:
    """The newest feedback time in the batch; now when the rows carry none."""
    if "timestamp" in rows.columns:
        stamps = pd.to_datetime(rows["timestamp"], utc=True, errors="coerce").dropna()
        if not stamps.empty:
            return stamps.max().to_pydatetime()
    return datetime.now(UTC)


def data_definition(features: list[str]) -> DataDefinition:
    return DataDefinition(
        numerical_columns=features,
        classification=[MulticlassClassification(target="target", prediction_labels="prediction")],
    )


def build_report(features: list[str], with_reference_quality: bool) -> Report:
    metrics: list = [
        RowCount(),
        # The PCA columns only, not target/prediction. Kolmogorov-Smirnov (p < 0.05) for
        # every column: Evidently's automatic pick for a reference of over 1,000 rows, the
        # normed Wasserstein distance at 0.1, flags most columns of a 100-row batch drawn
        # from the reference itself (sampling noise alone).
        DataDriftPreset(columns=features, num_method="ks"),
        MulticlassF1(),
        BalancedAccuracy(),
        MulticlassPrecision(),
        MulticlassRecall(),
        MulticlassAccuracy(),
    ]
    if with_reference_quality:
        # Evidently's per-class figures need the prediction column on both sides.
        metrics += [F1ByLabel(), PrecisionByLabel(), RecallByLabel()]
    return Report(metrics)


def run_batch(inputs: Inputs, batch: Batch):
    rows = batch.rows
    current_cols = [*inputs.features, "target", "prediction"]
    current = rows[current_cols].copy()
    definition = data_definition(inputs.features)
    current_ds = Dataset.from_pandas(current, data_definition=definition)
    reference_ds = Dataset.from_pandas(inputs.reference, data_definition=definition)
    versions = sorted({str(v) for v in rows.get("model_version", pd.Series(dtype=str)).dropna()})
    metadata = {
        "batch": batch.key,
        "first_row": str(batch.start + 1),
        "last_row": str(batch.stop),
        "model_versions": ",".join(versions),
        "complete": str(batch.complete).lower(),
    }
    tags = ["feedback"] + [f"model_v{v}" for v in versions]
    report = build_report(inputs.features, inputs.reference_has_prediction)
    with warnings.catch_warnings():
        # per-class precision of a label never predicted in the batch: 0, as in the figures
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return report.run(
            current_ds,
            reference_ds,
            timestamp=batch_time(rows),
            metadata=metadata,
            tags=tags,
            name=f"Feedback rows {batch.start + 1}-{batch.stop}",
        )


# -- workspace, project and dashboard ---------------------------------------------------


def find_or_create_project(workspace: Workspace, name: str) -> Project:
    found = workspace.search_project(name)
    if found:
        if len(found) > 1:
            log.warning("%d projects are named %r: using the first", len(found), name)
        return found[0]
    project = workspace.create_project(name)
    project.description = (
        "Data drift of the embedding (PCA columns) and classification quality of the "
        "deployed model, per batch of feedback rows, against data/ref_data.csv"
    )
    project.save()
    log.info("created project %s (%s)", name, project.id)
    return project


def panels() -> list:
    def metric(cls: type, legend: str, **labels: str) -> PanelMetric:
        return PanelMetric(legend=legend, metric=metric_type(cls), metric_labels=labels)

    drift = PanelMetric(
        legend="share of drifted PCA columns",
        metric="evidently:metric_v2:DriftedColumnsCount",
        metric_labels={"value_type": "share"},
    )
    rows = PanelMetric(legend="rows", metric="evidently:metric_v2:RowCount")
    return [
        text_panel(
            title="Deployed classifier: drift and quality over feedback batches",
            description="One point per batch of feedback rows (data/prod_data.csv) "
            "against the reference (data/ref_data.csv)",
        ),
        counter_panel(
            title="Feedback rows received", values=[rows], size="half", aggregation="sum"
        ),
        counter_panel(
            title="Drift share, last batch", values=[drift], size="half", aggregation="last"
        ),
        counter_panel(
            title="F1 (macro), last batch",
            values=[metric(MulticlassF1, "F1")],
            size="half",
            aggregation="last",
        ),
        counter_panel(
            title="Balanced accuracy, last batch",
            values=[metric(BalancedAccuracy, "balanced accuracy")],
            size="half",
            aggregation="last",
        ),
        line_plot_panel(
            title="Classification quality per batch",
            values=[
                metric(MulticlassF1, "F1 (macro)"),
                metric(BalancedAccuracy, "balanced accuracy"),
                metric(MulticlassPrecision, "precision (macro)"),
                metric(MulticlassRecall, "recall (macro)"),
                metric(MulticlassAccuracy, "accuracy"),
            ],
            size="full",
        ),
        line_plot_panel(
            title="Data drift: share of drifted PCA columns", values=[drift], size="half"
        ),
        bar_plot_panel(title="Feedback rows per batch", values=[rows], size="half"),
    ]


def ensure_dashboard(project: Project, state: dict) -> None:
    titles = [p.title for p in panels()]
    model = project.dashboard.model()
    if state.get("dashboard") == DASHBOARD_VERSION and [p.title for p in model.panels] == titles:
        return
    project.dashboard.clear_dashboard()
    for panel in panels():
        project.dashboard.add_panel(panel, tab="Monitoring")
    state["dashboard"] = DASHBOARD_VERSION
    log.info("dashboard: %d panels", len(titles))


def state_path(workspace: Workspace, project: Project) -> Path:
    return Path(workspace.path) / str(project.id) / STATE_FILE


def load_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def save_state(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, path)


@dataclass
class RunSummary:
    project_id: str
    prod_rows: int
    batches: int
    added: int
    replaced: int
    pending: int
    seconds: float


def run_once(
    settings: ReportingSettings | None = None, pipeline: PipelineSettings | None = None
) -> RunSummary:
    """Bring the workspace up to date with the data; safe to call again at any time."""
    started = time.perf_counter()
    settings = settings or ReportingSettings()
    pipeline = pipeline or PipelineSettings()
    inputs = load_inputs(pipeline, settings)
    quick = _already_current(settings, inputs)
    if quick is not None:  # opening the workspace reads every snapshot: skip it when idle
        project_id, batches = quick
        _explain_empty(inputs, batches)
        return _summary(started, project_id, inputs, batches, 0, 0, 0)

    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    workspace = Workspace.create(str(settings.workspace_dir))
    project = find_or_create_project(workspace, settings.project_name)
    path = state_path(workspace, project)
    state = load_state(path)
    ensure_dashboard(project, state)
    save_state(path, state)

    existing = {str(s) for s in workspace.list_runs(project.id)}
    known: dict[str, dict] = state.get("batches", {})
    if state.get("reference") != inputs.reference_key and known:
        log.info("ref_data.csv changed: every batch is redone against the new reference")
        for entry in known.values():
            if entry["snapshot"] in existing:
                workspace.delete_run(project.id, entry["snapshot"])
        known = {}
    size = batch_size(len(inputs.prod), settings)
    if state.get("batch_rows") not in (None, size) and known:
        log.info("batches grow to %d rows: every batch is redone", size)
        for entry in known.values():
            if entry["snapshot"] in existing:
                workspace.delete_run(project.id, entry["snapshot"])
        known = {}
    state["reference"] = inputs.reference_key
    state["batch_rows"] = size
    state["batches"] = known

    batches = split_batches(inputs.prod, size, settings)
    wanted = {b.key for b in batches}
    for key in [k for k in known if k not in wanted]:  # the file was cut or replaced
        if known[key]["snapshot"] in existing:
            workspace.delete_run(project.id, known[key]["snapshot"])
        del known[key]

    todo = []
    for batch in batches:
        entry = known.get(batch.key)
        current = entry is not None and entry["snapshot"] in existing
        if current and entry["fingerprint"] == fingerprint(batch.rows):
            continue
        todo.append((batch, entry if current else None))

    _explain_empty(inputs, batches)
    todo.sort(key=lambda item: item[0].index, reverse=True)  # newest first
    added = replaced = 0
    for batch, entry in todo[: settings.max_new_snapshots]:
        snapshot = run_batch(inputs, batch)
        ref = workspace.add_run(project.id, snapshot)
        if entry is not None:
            workspace.delete_run(project.id, entry["snapshot"])
            replaced += 1
        else:
            added += 1
        known[batch.key] = {
            "snapshot": str(ref.id),
            "fingerprint": fingerprint(batch.rows),
            "rows": [batch.start, batch.stop],
            "complete": batch.complete,
        }
        save_state(path, state)  # after each snapshot: an interrupted run loses nothing
    pending = max(0, len(todo) - settings.max_new_snapshots)
    if pending:
        log.info("%d more batches wait for the next run (REPORT_MAX_NEW_SNAPSHOTS)", pending)
    save_state(path, state)
    return _summary(started, str(project.id), inputs, batches, added, replaced, pending)


def _already_current(settings: ReportingSettings, inputs: Inputs) -> tuple[str, list[Batch]] | None:
    """(project id, batches) when the workspace already holds every batch as it is now."""
    if not settings.workspace_dir.is_dir():
        return None
    for metadata in sorted(settings.workspace_dir.glob("*/metadata.json")):
        try:
            if json.loads(metadata.read_text()).get("name") == settings.project_name:
                folder = metadata.parent
                break
        except (OSError, ValueError):
            continue
    else:
        return None
    state = load_state(folder / STATE_FILE)
    size = batch_size(len(inputs.prod), settings)
    if (
        state.get("dashboard") != DASHBOARD_VERSION
        or not (folder / "dashboard.json").is_file()
        or state.get("reference") != inputs.reference_key
        or (state.get("batch_rows") != size and state.get("batches"))
    ):
        return None
    known = state.get("batches", {})
    batches = split_batches(inputs.prod, size, settings)
    if {b.key for b in batches} != set(known):
        return None
    for batch in batches:
        entry = known[batch.key]
        snapshot = folder / "snapshots" / f"{entry['snapshot']}.json"
        if entry["fingerprint"] != fingerprint(batch.rows) or not snapshot.is_file():
            return None
    return folder.name, batches


def _summary(
    started: float,
    project_id: str,
    inputs: Inputs,
    batches: list[Batch],
    added: int,
    replaced: int,
    pending: int,
) -> RunSummary:
    summary = RunSummary(
        project_id,
        len(inputs.prod),
        len(batches),
        added,
        replaced,
        pending,
        round(time.perf_counter() - started, 3),
    )
    log.info(
        "project %s: %d feedback rows, %d batches, %d snapshots added, %d replaced (%.1f s)",
        summary.project_id,
        summary.prod_rows,
        summary.batches,
        added,
        replaced,
        summary.seconds,
    )
    return summary


def _explain_empty(inputs: Inputs, batches: list[Batch]) -> None:
    if not batches:
        log.warning(
            "no snapshot yet (%d feedback rows): the dashboard panels stay empty until "
            "feedback arrives through the web app or POST /feedback",
            len(inputs.prod),
        )
    elif len(batches) == 1:
        log.info("one batch so far: the trend panels show a single point")
    if not inputs.reference_has_prediction:
        log.warning("the reference side of classification quality and per-class figures are off")


def run_forever(
    every: float, settings: ReportingSettings, pipeline: PipelineSettings, skip_first: bool = False
) -> None:
    stop = {"now": False}

    def _stop(signum, _frame) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("re-running every %.0f s", every)
    first = True
    while not stop["now"]:
        if not (first and skip_first):
            try:
                run_once(settings, pipeline)
            except Exception:  # one bad run (a file being replaced) must not stop the schedule
                log.exception("report run failed; trying again in %.0f s", every)
        first = False
        deadline = time.monotonic() + every
        while not stop["now"] and time.monotonic() < deadline:
            time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--every",
        type=float,
        nargs="?",
        const=-1.0,
        default=None,
        metavar="SECONDS",
        help="re-run on this schedule; with no value, REPORT_EVERY_SECONDS (0: run once). "
        "Without --every the script runs once, whatever the environment says",
    )
    parser.add_argument(
        "--skip-first",
        action="store_true",
        help="with --every: wait one interval before the first run (it has just run)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    logging.getLogger("evidently").setLevel(logging.WARNING)
    settings = ReportingSettings()
    pipeline = PipelineSettings()
    # `python project.py` is one run, whatever the environment (the UI starts after it)
    every = args.every if args.every is not None and args.every >= 0 else 0.0
    if args.every is not None and args.every < 0:  # `--every` alone
        every = settings.every_seconds
    if every > 0 and math.isfinite(every):
        run_forever(every, settings, pipeline, skip_first=args.skip_first)
        return 0
    if args.skip_first:  # a schedule of 0 after a first run: nothing more to do
        return 0
    try:
        run_once(settings, pipeline)
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
