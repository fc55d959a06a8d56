"""The model in memory.

`ModelHolder` keeps one loaded artifact set. Every request asks it for the model in
use once (its answer and its model_version come from that model), which costs one
readlink of artifacts/current (with DATABASE_URL, one SELECT remembered for half a
second; while the database is away, the model in memory keeps serving): when
another worker process, replica or retraining has activated a newer version, the
holder loads it once and swaps it in, so every worker serves a new version as soon
as it is written.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from mlstack.artifacts import ArtifactError, ArtifactSet, ArtifactStore
from mlstack.embedding import Embedding
from mlstack.errors import DatabaseUnavailableError
from mlstack.onnx_features import ImageModelError
from mlstack.scoring import FastScorer

from . import metrics

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
        scores = self.scorer.one(vector)
        best = max(range(len(scores)), key=scores.__getitem__)  # the first, as np.argmax
        probabilities = dict(zip(self.names, [round(s, 6) for s in scores], strict=True))
        return self.classes[best], probabilities

    def predict_many(self, vectors: np.ndarray) -> list[tuple[int | str, dict[str, float]]]:
        """`predict` of each row of an (n, n_components) batch, scored in one pass."""
        scores = self.scorer.scores(vectors)
        best = scores.argmax(axis=1).tolist()
        return [
            (self.classes[i], dict(zip(self.names, row, strict=True)))
            for i, row in zip(best, np.round(scores, 6).tolist(), strict=True)
        ]


class ModelHolder:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self._model: LoadedModel | None = None
        self._swap = threading.Lock()

    def load(self) -> LoadedModel:
        artifacts = self.store.load()
        if isinstance(artifacts.embedding, Embedding):
            artifacts.embedding.prepare()
        model = LoadedModel.from_artifacts(artifacts)
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
            except (ArtifactError, DatabaseUnavailableError, ImageModelError):
                log.exception(
                    "version %d could not be loaded: still serving %d", active, model.version
                )
                return model
