"""Retraining on reference + production data, behind the promotion gate.

The embedding stays frozen (ref_data.csv and prod_data.csv stay in one vector
space); the scaler and the classifier are refitted. Which feedback rows train and
which judge is mlstack.feedback's to say; whether the candidate goes live is
mlstack.gate's. A rejected candidate is written all the same, for inspection, and
never made current.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .artifacts import ArtifactSet, ArtifactStore, Manifest
from .feedback import FeedbackRows, burst_mask, contested_mask, holdout_mask, read_feedback
from .gate import JUDGED, GateRules, judge
from .logs import setup_logging
from .orphans import die_with_parent
from .pipeline import prune, read_reference, read_synthetic
from .settings import PipelineSettings
from .stores import open_artifact_store, open_prod_store
from .training import Classifier, evaluate, fit

log = logging.getLogger(__name__)


def _same_label_type(targets: np.ndarray, like: np.ndarray) -> np.ndarray:
    """CSV targets come back as the type pandas guesses; match the reference's."""
    if np.issubdtype(like.dtype, np.integer):
        return targets.astype(like.dtype)
    return targets.astype(str)


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


class _Trainer:
    """The rows of one retraining, and candidates fitted on a choice of feedback rows."""

    def __init__(self, settings: PipelineSettings, current: ArtifactSet) -> None:
        n = current.embedding.n_components
        ref = read_reference(settings, n)
        self.base_vectors = ref.vectors[ref.train]
        self.base_targets = ref.targets[ref.train]
        synthetic_vectors, synthetic_targets = read_synthetic(settings, n)
        self.base_vectors = np.vstack([self.base_vectors, synthetic_vectors])
        self.base_targets = np.concatenate(
            [self.base_targets, _same_label_type(synthetic_targets, self.base_targets)]
        )
        self.counts = {"ref": len(ref.train), "synthetic": len(synthetic_vectors)}
        room = max(0, settings.max_training_rows - len(self.base_targets))
        self.feedback: FeedbackRows = read_feedback(open_prod_store(settings, n), n, room)
        self.feedback.targets = _same_label_type(self.feedback.targets, self.base_targets)
        share = settings.gate_feedback_share if settings.gate else 0.0
        self.held = (
            holdout_mask(self.feedback, share, ref.vectors[ref.holdout])
            if settings.gate
            else np.zeros(len(self.feedback), dtype=bool)
        )
        self.contested = contested_mask(self.feedback)
        # GATE=false is the brief's plain loop: every feedback row trains.
        self.burst = (
            burst_mask(
                self.contested,
                self.feedback.versions,
                settings.contested_burst_share,
                settings.gate_min_feedback_rows,
            )
            if settings.gate
            else np.zeros(len(self.feedback), dtype=bool)
        )
        self.eval_sets = {
            "reference": (ref.vectors[ref.holdout], ref.targets[ref.holdout]),
            "feedback": (self.feedback.vectors[self.held], self.feedback.targets[self.held]),
        }
        self.seed = settings.random_state

    def fit(self, train: np.ndarray) -> tuple[Classifier, dict[str, dict], int]:
        vectors = np.vstack([self.base_vectors, self.feedback.vectors[train]])
        targets = np.concatenate([self.base_targets, self.feedback.targets[train]])
        classifier = Classifier(*fit(vectors, targets, self.seed))
        return classifier, self.score(classifier), len(targets)

    def score(self, classifier: Classifier) -> dict[str, dict]:
        return {part: evaluate(classifier, *data) for part, data in self.eval_sets.items()}


def retrain(settings: PipelineSettings, reason: str = "retraining") -> Manifest:
    """A new scaler + classifier on ref (training split) + synthetic + prod rows,
    written as a new artifact version that goes live only if it passes the gate."""
    started = time.perf_counter()
    store = open_artifact_store(settings)
    current = store.load()
    rows = _Trainer(settings, current)
    # A burst of contested rows is held back from the first candidate; other contested
    # rows are trained on, unless that candidate fails the gate: then a second one is
    # trained without any contested row.
    train = ~rows.held & ~rows.burst
    classifier, figures, total = rows.fit(train)
    decision: dict = {"accepted": True, "reason": "gate off", "candidate": figures}
    if settings.gate:
        champion = rows.score(current.classifier)
        gate = GateRules(
            settings.gate_tolerance, settings.gate_floor, settings.gate_min_feedback_rows
        )
        best = _best_reference(store)
        decision = judge(figures, champion, gate, best).to_dict()
        if not decision["accepted"] and (train & rows.contested).any():
            log.info("candidate rejected (%s): retrying without contested rows", decision["reason"])
            second_train = ~rows.held & ~rows.contested
            second = rows.fit(second_train)
            retry = judge(second[1], champion, gate, best).to_dict()
            retry["first_try"] = decision
            decision = retry
            if retry["accepted"]:
                (classifier, figures, total), train = second, second_train
        decision["champion_version"] = current.version
        decision["trained_on_contested"] = bool((train & rows.contested).any())
    seconds = round(time.perf_counter() - started, 2)
    manifest = store.save(
        current.embedding,
        classifier,
        # prod_seen: the rows prod_data.csv held, so a restart can tell a missed retraining.
        rows={
            **rows.counts,
            "prod": int(train.sum()),
            "prod_holdout": int(rows.held.sum()),
            "prod_contested": int(rows.contested.sum()),
            "prod_burst": int(rows.burst.sum()),
            "prod_seen": rows.feedback.seen,
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
        base_version=current.version,  # refused if another version went live meanwhile
    )
    prune(store, settings)
    log.info(
        "retrained on %d feedback rows (%d held out, %d contested, %d in bursts) in %.1fs "
        "-> version %d, reference hold-out %s; gate: %s (%s)",
        int(train.sum()),
        int(rows.held.sum()),
        int(rows.contested.sum()),
        int(rows.burst.sum()),
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
