"""One run brings the Evidently workspace up to date with the data; a schedule repeats it.

The feedback is cut into batches of REPORT_BATCH_ROWS rows in file order; each batch
becomes one snapshot, timestamped with the newest feedback time in it, so the dashboard
shows how drift and quality move over time. Which batches are already in is kept beside
the project (batches.json, with a fingerprint of each batch's rows): a re-run adds only
what is new, redoes a batch whose rows changed, and replaces the snapshot of the last,
still filling batch as it grows.

Each retraining's gate decision (an artifact version whose manifest holds one) is one
more snapshot, timestamped with the time the candidate was trained, kept in
batches.json under "gate" by version; a version pruned from artifacts/ keeps its
snapshot (the decision stays in the history), one retrained under the same number
(its trained_at differs) has it replaced.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from evidently.legacy.core import new_id
from evidently.ui.workspace import Workspace

from ..settings import ReportingSettings
from .dashboard import DASHBOARD_VERSION, ensure_dashboard, find_or_create_project
from .data import Batch, Inputs, batch_size, fingerprint, load_inputs, split_batches
from .report import reference_dataset, run_batch, run_gate
from .state import find_project_folder, load_state, project_folder, save_state

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    project_id: str
    prod_rows: int
    batches: int
    added: int
    replaced: int
    pending: int
    seconds: float


def run_once(settings: ReportingSettings | None = None) -> RunSummary:
    """Bring the workspace up to date with the data; safe to call again at any time."""
    started = time.perf_counter()
    settings = settings or ReportingSettings()
    inputs = load_inputs(settings)
    size = batch_size(len(inputs.prod), settings)
    batches = split_batches(inputs.prod, size, settings)
    _explain(inputs, batches)
    current = _already_current(settings, inputs, size, batches)
    if current is not None:  # opening the workspace reads every snapshot: skip it when idle
        return _summary(started, current, inputs, batches, 0, 0, 0)

    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    workspace = Workspace.create(str(settings.workspace_dir))
    project = find_or_create_project(workspace, settings.report_project_name)
    folder = project_folder(settings.workspace_dir, str(project.id))
    state = load_state(folder)
    ensure_dashboard(project, state, inputs.table_columns)
    save_state(folder, state)

    existing = {str(s) for s in workspace.list_runs(project.id)}
    known: dict[str, dict] = state.get("batches", {})
    wanted = {b.key for b in batches}
    stale = [key for key in known if key not in wanted]  # the file was cut or replaced
    if known and state.get("reference") != inputs.reference_key:
        log.info("ref_data.csv or the burst rule changed: every batch is redone")
        stale = list(known)
    elif known and state.get("batch_rows") not in (None, size):
        log.info("batches grow to %d rows: every batch is redone", size)
        stale = list(known)
    for key in stale:
        _delete_snapshot(workspace, project.id, known.pop(key)["snapshot"], existing)
    state.update(reference=inputs.reference_key, batch_rows=size, batches=known)

    todo = []
    for batch in batches:
        entry = known.get(batch.key)
        in_workspace = entry is not None and entry["snapshot"] in existing
        if in_workspace and entry["fingerprint"] == fingerprint(batch.rows):
            continue
        todo.append((batch, entry if in_workspace else None))

    todo.sort(key=lambda item: item[0].index, reverse=True)  # newest first
    now = todo[: settings.report_max_new_snapshots]
    made = _snapshots(inputs, [batch for batch, _ in now], settings.report_drift_share)
    added = replaced = 0
    for (batch, entry), snapshot in zip(now, made, strict=True):
        snapshot_id = str(new_id())
        # Workspace.add_run's write, of a snapshot made in another process
        workspace.state.write_snapshot(project.id, snapshot_id, snapshot)
        if entry is not None:
            _delete_snapshot(workspace, project.id, entry["snapshot"], existing)
            replaced += 1
        else:
            added += 1
        known[batch.key] = {
            "snapshot": snapshot_id,
            "fingerprint": fingerprint(batch.rows),
            "rows": [batch.start, batch.stop],
            "complete": batch.complete,
        }
        save_state(folder, state)  # after each snapshot: an interrupted run loses nothing
    pending = max(0, len(todo) - settings.report_max_new_snapshots)
    if pending:
        log.info("%d more batches wait for the next run (REPORT_MAX_NEW_SNAPSHOTS)", pending)
    gate_added, gate_replaced = _sync_gate(workspace, project.id, inputs, state, existing, folder)
    added += gate_added
    replaced += gate_replaced
    save_state(folder, state)
    return _summary(started, str(project.id), inputs, batches, added, replaced, pending)


# What the processes making snapshots read: set before they fork, so nothing is sent
_SHARED: dict = {}


def _snapshot_of(index: int):
    inputs, batches, reference, drift_share = (
        _SHARED[k] for k in ("inputs", "batches", "reference", "drift_share")
    )
    return run_batch(inputs, batches[index], drift_share, reference).to_snapshot_model()


def _snapshots(inputs: Inputs, batches: list[Batch], drift_share: float) -> Iterator:
    """The snapshots of `batches` (stored form), in order, made on every core the
    process may use: a first run makes up to REPORT_MAX_NEW_SNAPSHOTS of them, each
    independent of the others. Forked processes start at once, with Evidently already
    imported and the reference already prepared (a new interpreter would import
    Evidently again, seconds)."""
    if not batches:
        return
    _SHARED.update(
        inputs=inputs, batches=batches, reference=reference_dataset(inputs), drift_share=drift_share
    )
    try:
        workers = min(len(os.sched_getaffinity(0)), len(batches))
        if workers <= 1:
            yield from map(_snapshot_of, range(len(batches)))
            return
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            yield from pool.map(_snapshot_of, range(len(batches)))
    finally:
        _SHARED.clear()


def _gate_key(entry: dict) -> str:
    return f"{entry['version']:06d}"


def _sync_gate(
    workspace: Workspace, project_id, inputs: Inputs, state: dict, existing: set[str], folder
) -> tuple[int, int]:
    """One snapshot per retraining's gate decision: (added, replaced)."""
    known: dict[str, dict] = state.setdefault("gate", {})
    added = replaced = 0
    for entry in inputs.gate:
        key = _gate_key(entry)
        old = known.get(key)
        if old and old["trained_at"] == entry["trained_at"] and old["snapshot"] in existing:
            continue
        ref = workspace.add_run(project_id, run_gate(entry))
        existing.add(str(ref.id))
        if old and old["snapshot"] in existing:
            _delete_snapshot(workspace, project_id, old["snapshot"], existing)
            replaced += 1
        else:
            added += 1
        known[key] = {
            "snapshot": str(ref.id),
            "trained_at": entry["trained_at"],
            "accepted": bool(entry["gate"].get("accepted", True)),
        }
        save_state(folder, state)
    return added, replaced


def _delete_snapshot(workspace: Workspace, project_id, snapshot: str, existing: set[str]) -> None:
    if snapshot in existing:
        workspace.delete_run(project_id, snapshot)
        existing.discard(snapshot)


def _already_current(
    settings: ReportingSettings, inputs: Inputs, size: int, batches: list[Batch]
) -> str | None:
    """The project's id when the workspace already holds every batch as it is now."""
    folder = find_project_folder(settings.workspace_dir, settings.report_project_name)
    if folder is None:
        return None
    state = load_state(folder)
    known = state.get("batches", {})
    if (
        state.get("dashboard") != DASHBOARD_VERSION
        or not (folder / "dashboard.json").is_file()
        or state.get("reference") != inputs.reference_key
        or (state.get("batch_rows") != size and known)
        or {b.key for b in batches} != set(known)
    ):
        return None
    for batch in batches:
        entry = known[batch.key]
        snapshot = folder / "snapshots" / f"{entry['snapshot']}.json"
        if entry["fingerprint"] != fingerprint(batch.rows) or not snapshot.is_file():
            return None
    gate = state.get("gate", {})
    for retraining in inputs.gate:
        entry = gate.get(_gate_key(retraining))
        if entry is None or entry["trained_at"] != retraining["trained_at"]:
            return None
        if not (folder / "snapshots" / f"{entry['snapshot']}.json").is_file():
            return None
    return folder.name


def _summary(
    started: float,
    project_id: str,
    inputs: Inputs,
    batches: list[Batch],
    added: int,
    replaced: int,
    pending: int,
) -> RunSummary:
    seconds = round(time.perf_counter() - started, 3)
    summary = RunSummary(
        project_id, len(inputs.prod), len(batches), added, replaced, pending, seconds
    )
    log.info(
        "project %s: %d feedback rows, %d batches, %d snapshots added, %d replaced (%.1f s)",
        project_id,
        summary.prod_rows,
        summary.batches,
        added,
        replaced,
        seconds,
    )
    return summary


def _explain(inputs: Inputs, batches: list[Batch]) -> None:
    """Say what the dashboard will lack, and why."""
    if not batches:
        log.warning(
            "no snapshot yet (%d feedback rows): the dashboard panels stay empty until "
            "feedback arrives through the web app or POST /feedback",
            len(inputs.prod),
        )
    elif len(batches) == 1:
        log.info("one batch so far: the trend panels show a single point")
    if not inputs.reference_has_prediction:
        log.warning(
            "left out without a model: the reference side of the classification figures, "
            "the per-class figures and the confusion matrix (drift and the current "
            "batch's F1, balanced accuracy, precision, recall and accuracy are in)"
        )


def run_forever(every: float, settings: ReportingSettings, skip_first: bool = False) -> None:
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
                run_once(settings)
            except Exception:  # one bad run (a file being replaced) must not stop the schedule
                log.exception("report run failed; trying again in %.0f s", every)
        first = False
        deadline = time.monotonic() + every
        while not stop["now"] and time.monotonic() < deadline:
            time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))
