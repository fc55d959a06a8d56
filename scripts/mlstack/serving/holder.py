"""The model in memory, the production-data store and the retraining worker.

`ModelHolder` keeps one loaded artifact set. Every request asks it for the model in
use, which costs one readlink of artifacts/current: when another worker process (or
this one's retraining) has activated a newer version, the holder loads it once and
swaps it in, so every worker serves a new version as soon as it is written.

`Retrainer` trains off the request path: a background thread per worker starts each
retraining in a separate process at a lower CPU priority (the workers keep their
CPU and interpreter lock for requests), and a file lock makes retrainings one at a
time across all workers.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import metrics
import numpy as np
from config import ServingSettings
from filelock import FileLock
from mlstack.artifacts import ArtifactError, ArtifactSet, ArtifactStore, Manifest
from mlstack.pipeline import retrain_isolated
from mlstack.prod_store import ProdDataStore
from mlstack.scoring import FastScorer

log = logging.getLogger("serving")


@dataclass(frozen=True)
class LoadedModel:
    artifacts: ArtifactSet
    scorer: FastScorer
    labels: dict[str, int | str]  # "7" -> 7: labels as they arrive in JSON or a form
    names: tuple[str, ...]  # the classes as the keys of `probabilities`

    @property
    def version(self) -> int:
        return self.artifacts.version

    @property
    def classes(self) -> list:
        return self.scorer.classes

    @classmethod
    def from_artifacts(cls, artifacts: ArtifactSet) -> LoadedModel:
        scorer = FastScorer(artifacts.classifier)
        names = tuple(str(c) for c in scorer.classes)
        return cls(artifacts, scorer, dict(zip(names, scorer.classes, strict=True)), names)

    def label(self, value: int | str) -> int | str | None:
        """The data set's own label for a value a client sent, or None if unknown."""
        return self.labels.get(str(value))

    def predict(self, vector: np.ndarray) -> tuple[int | str, dict[str, float]]:
        scores = self.scorer.scores(vector)
        # One rounding and conversion for all classes: a call per class costs more.
        probabilities = dict(zip(self.names, np.round(scores, 6).tolist(), strict=True))
        return self.classes[int(np.argmax(scores))], probabilities


class ModelHolder:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self._model: LoadedModel | None = None
        self._swap = threading.Lock()

    def load(self) -> LoadedModel:
        model = LoadedModel.from_artifacts(self.store.load())
        self._model = model
        metrics.set_model_version(model.version)
        log.info("model version %d loaded (%s)", model.version, model.artifacts.manifest.classifier)
        return model

    @property
    def model(self) -> LoadedModel:
        model = self._model
        if model is None:
            raise RuntimeError("the model is not loaded yet")
        active = self.store.current_version()
        if active is None or active == model.version:
            return model
        with self._swap:  # one thread loads; the others find it done
            if self._model is not None and self._model.version == active:
                return self._model
            try:
                return self.load()
            except ArtifactError:
                log.exception(
                    "version %d could not be loaded: still serving %d", active, model.version
                )
                return model


@dataclass
class Retrainer:
    settings: ServingSettings
    holder: ModelHolder
    _executor: ThreadPoolExecutor = field(init=False)
    _lock: FileLock = field(init=False)
    _pending: int = field(default=0, init=False)
    _count: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrain")
        Path(self.settings.artifacts_dir).mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(Path(self.settings.artifacts_dir) / ".retrain.lock"))

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def submit(self, rows: int, *, only_if_missed: bool = False) -> Future[Manifest | None]:
        with self._count:
            self._pending += 1
        return self._executor.submit(self._run, rows, only_if_missed)

    def _run(self, rows: int, only_if_missed: bool) -> Manifest | None:
        try:
            with self._lock:  # across workers: one retraining at a time
                if only_if_missed and self.holder.store.manifest().rows.get("prod_seen", 0) >= rows:
                    return None
                started = time.perf_counter()
                log.info("retraining: prod_data.csv reached %d rows", rows)
                manifest = retrain_isolated(
                    self.settings, f"{rows} feedback rows", self.settings.retrain_niceness
                )
                self.holder.model  # noqa: B018  (swap to the new version now, not at the next request)
                metrics.observe_retrain(time.perf_counter() - started, manifest.version)
                return manifest
        except Exception:
            metrics.observe_retrain(0.0, success=False)
            log.exception("retraining at %d rows failed; the previous model stays in use", rows)
            raise
        finally:
            with self._count:
                self._pending -= 1

    def catch_up(self, prod: ProdDataStore) -> Future | None:
        """After a crash during a retraining, the row that triggered it is stored but
        no model covers it: train once at start."""
        k = self.settings.retrain_every_k
        due = prod.rows() // k * k
        if due and self.holder.store.manifest().rows.get("prod_seen", 0) < due:
            log.info("the retraining due at %d rows did not happen: starting it now", due)
            return self.submit(due, only_if_missed=True)
        return None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class Services:
    """Everything a request needs, built once in the lifespan."""

    settings: ServingSettings
    holder: ModelHolder
    prod: ProdDataStore
    retrainer: Retrainer
    large_decodes: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self.large_decodes = threading.BoundedSemaphore(self.settings.large_decodes_at_once)
