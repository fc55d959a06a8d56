"""Scores for one vector at a time, without scikit-learn's per-call overhead.

A served prediction is one 30-value vector. scikit-learn validates its input and
dispatches through several layers on every call, which costs far more than the
arithmetic for a single row; `FastScorer` keeps the fitted numbers as plain numpy
arrays and computes the same scores as `Classifier.scores` directly, for one vector
or a batch of them (a batched /predict scores its images in one pass). Models it does
not know are scored through scikit-learn as before.
"""

from __future__ import annotations

import itertools
import math

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
        self._gamma = float(model._gamma)
        # Transposed once, times 2 * gamma: x @ sv_t is then the kernel's cross term, one
        # product for a vector or a batch alike, with no pass over it to scale it.
        self._sv_t = np.ascontiguousarray(support.T) * (2.0 * self._gamma)
        self._gamma_sv_sq = self._gamma * np.einsum("ij,ij->i", support, support)
        starts = np.concatenate([[0], np.cumsum(model.n_support_)]).tolist()
        self._blocks = list(itertools.pairwise(starts))  # each class's support vectors
        pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
        self._pairs = pairs
        if n_classes == 2:
            # One signed margin: every support vector's coefficient in one row.
            self._weights = model.dual_coef_.copy()
        else:
            # libsvm's one-vs-one decision value for the pair (i, j) is the sum of
            # coef * K(x, sv) over the support vectors of i (their coefficients' row
            # j - 1) and of j (row i), plus the intercept. Each class's kernel block is
            # multiplied by its own coefficients (n_classes - 1 per support vector), not
            # by a pairs x support vectors matrix that is mostly zeros: a fifth of the
            # work for ten classes.
            self._coef_t = [
                np.ascontiguousarray(model.dual_coef_[:, start:end].T)
                for start, end in self._blocks
            ]
            self._pair_first = np.array([i for i, _ in pairs])
            self._pair_second = np.array([j for _, j in pairs])
            # For one vector the ten small products cost more in calls than they save:
            # one product with the (support vectors x pairs) matrix instead.
            self._pairs_t = np.zeros((len(support), len(pairs)))
            for p, (i, j) in enumerate(pairs):
                (i0, i1), (j0, j1) = self._blocks[i], self._blocks[j]
                self._pairs_t[i0:i1, p] = model.dual_coef_[j - 1, i0:i1]
                self._pairs_t[j0:j1, p] = model.dual_coef_[i, j0:j1]
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
        # exp(-gamma * (|sv|^2 - 2 x.sv + |x|^2)), built in the product's own array: for
        # a batch it is the largest array here, and each temporary is a pass over it.
        kernel = x @ self._sv_t
        kernel -= self._gamma_sv_sq
        kernel -= (self._gamma * np.vecdot(x, x))[..., None]
        return np.exp(kernel, out=kernel)

    def _svc_ovr(self, x: np.ndarray) -> np.ndarray:
        kernel = self._kernel(x)
        if kernel.ndim == 1:
            ovo = kernel @ self._pairs_t + self._intercept
        else:
            # (n, class, row of coefficients): each class's block times its coefficients.
            blocks = np.stack(
                [
                    kernel[:, start:end] @ coef_t
                    for (start, end), coef_t in zip(self._blocks, self._coef_t, strict=True)
                ],
                axis=1,
            )
            first, second = self._pair_first, self._pair_second
            ovo = blocks[:, first, second - 1] + blocks[:, second, first] + self._intercept
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

    def _scaled(self, vectors: np.ndarray) -> np.ndarray:
        """The StandardScaler's transform, for one vector or a batch."""
        x = vectors - self._mean
        return x / self._scale if self._scale is not None else x

    def one(self, vector: np.ndarray) -> list[float]:
        """`scores` of one (n_components,) vector, as a list. After the kernel, the votes,
        confidences and softmax of ten classes are a few hundred float operations: as
        Python arithmetic they cost a served prediction less than as a dozen more numpy
        calls, each of which, in a server, reads its code and data again (12 to 16 µs less
        per request in the serving benchmark's staircase)."""
        if not self._fast or len(self.classes) == 2:
            return self.scores(vector).tolist()
        ovo = (self._kernel(self._scaled(vector)) @ self._pairs_t + self._intercept).tolist()
        # As _svc_ovr, pair by pair: a vote to the first class of a pair when its decision
        # value is positive, and its value added to the first's confidence, taken from
        # the second's.
        votes = [0.0] * len(self.classes)
        confidence = [0.0] * len(self.classes)
        for (first, second), value in zip(self._pairs, ovo, strict=True):
            votes[first if value > 0 else second] += 1.0
            confidence[first] += value
            confidence[second] -= value
        raw = [v + c / (3.0 * (abs(c) + 1.0)) for v, c in zip(votes, confidence, strict=True)]
        top = max(raw)
        exp = [math.exp(r - top) for r in raw]
        total = sum(exp)
        return [e / total for e in exp]

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Class scores (each row summing to 1): (classes,) for one (n_components,)
        vector, (n, classes) for an (n, n_components) batch."""
        if not self._fast:
            scores = self.classifier.scores(np.atleast_2d(vectors))
            return scores if vectors.ndim == 2 else scores[0]
        x = self._scaled(vectors)
        raw = self._svc_binary(x) if len(self.classes) == 2 else self._svc_ovr(x)
        return softmax(raw) if raw.ndim == 2 else softmax(raw[None])[0]
