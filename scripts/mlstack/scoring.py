"""Scores for one vector at a time, without scikit-learn's per-call overhead.

A served prediction is one 30-value vector. scikit-learn validates its input and
dispatches through several layers on every call, which costs far more than the
arithmetic for a single row; `FastScorer` keeps the fitted numbers as plain numpy
arrays and computes the same scores as `Classifier.scores` directly, for one vector
or a batch of them (a batched /predict scores its images in one pass). Models it does
not know are scored through scikit-learn as before.
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from .training import Classifier, softmax


class FastScorer:
    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        self.classes = classifier.classes
        scaler = classifier.scaler
        self._mean = scaler.mean_ if isinstance(scaler, StandardScaler) else None
        self._scale = getattr(scaler, "scale_", None)
        model = classifier.model
        self._fast = (
            isinstance(model, SVC)
            and model.kernel == "rbf"
            and model.decision_function_shape == "ovr"
            and len(self.classes) >= 2
            and self._mean is not None
        )
        if self._fast:
            self._prepare_svc(model)

    def _prepare_svc(self, model: SVC) -> None:
        n_classes = len(self.classes)
        support = model.support_vectors_
        # Transposed once: x @ sv_t is one product for a vector or a batch alike.
        self._sv_t = np.ascontiguousarray(support.T)
        self._sv_sq = np.einsum("ij,ij->i", support, support)
        self._gamma = float(model._gamma)
        starts = np.concatenate([[0], np.cumsum(model.n_support_)])
        pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
        # One row per pair (i, j) of classes: libsvm's one-vs-one decision value is
        # sum(coef * K(x, sv)) over the support vectors of i and j, plus the intercept.
        weights = np.zeros((len(pairs), len(support)))
        for p, (i, j) in enumerate(pairs):
            weights[p, starts[i] : starts[i + 1]] = model.dual_coef_[
                j - 1, starts[i] : starts[i + 1]
            ]
            weights[p, starts[j] : starts[j + 1]] = model.dual_coef_[i, starts[j] : starts[j + 1]]
        self._weights = weights
        self._intercept = np.asarray(model.intercept_, dtype=np.float64)
        # Which class is first and second in each pair, as (pairs x classes) 0/1 matrices:
        # votes and confidences are then two small matrix products, not a Python loop.
        self._first = np.zeros((len(pairs), n_classes))
        self._second = np.zeros((len(pairs), n_classes))
        for p, (i, j) in enumerate(pairs):
            self._first[p, i] = self._second[p, j] = 1.0
        self._sides = self._first - self._second

    def _kernel(self, x: np.ndarray) -> np.ndarray:
        """RBF kernel of x against the support vectors: (n_sv,) for one (d,) vector,
        (n, n_sv) for an (n, d) batch."""
        # vecdot(...)[..., None]: a few µs less than einsum and expand_dims on one row.
        distances = self._sv_sq - 2.0 * (x @ self._sv_t) + np.vecdot(x, x)[..., None]
        return np.exp(-self._gamma * distances)

    def _svc_ovr(self, x: np.ndarray) -> np.ndarray:
        ovo = self._kernel(x) @ self._weights.T + self._intercept
        # scikit-learn's one-vs-rest shape: votes plus confidences squashed into (-1/3, 1/3).
        first_wins = ovo > 0
        votes = first_wins @ self._first + (~first_wins) @ self._second
        confidence = ovo @ self._sides
        return votes + confidence / (3.0 * (np.abs(confidence) + 1.0))

    def _svc_binary(self, x: np.ndarray) -> np.ndarray:
        # Two classes: one signed margin (scikit-learn's decision_function, whose
        # dual_coef_ and intercept_ carry its sign), as Classifier.scores stacks it.
        margin = (self._kernel(x) @ self._weights.T + self._intercept)[..., 0]
        return np.stack([-margin, margin], axis=-1)

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Class scores (each row summing to 1): (classes,) for one (n_components,)
        vector, (n, classes) for an (n, n_components) batch."""
        if not self._fast:
            scores = self.classifier.scores(np.atleast_2d(vectors))
            return scores if vectors.ndim == 2 else scores[0]
        x = vectors - self._mean
        if self._scale is not None:
            x = x / self._scale
        raw = self._svc_binary(x) if len(self.classes) == 2 else self._svc_ovr(x)
        return softmax(raw) if raw.ndim == 2 else softmax(raw[None])[0]
