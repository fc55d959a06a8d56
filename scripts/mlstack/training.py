"""Scaler + classifier on embedded vectors, and how they are judged.

The classifier is an RBF support-vector machine: the best cross-validated,
held-out and real-world accuracy of the candidates compared by
scripts/compare_models.py (docs/model.md), trained in about 2 s on the first
training's rows and in a few seconds at the retraining cap (MAX_TRAINING_ROWS)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from .quality import classification_quality


def make_classifier(seed: int = 0) -> SVC:
    return SVC(C=10.0, gamma="scale", kernel="rbf", random_state=seed)


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, holdout) of a stratified split; the same labels, fraction and
    seed always give the same split, so retraining never trains on the holdout."""
    index = np.arange(len(labels))
    train, holdout = train_test_split(index, test_size=fraction, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(holdout)


def fit(vectors: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[StandardScaler, SVC]:
    scaler = StandardScaler().fit(vectors)
    model = make_classifier(seed).fit(scaler.transform(vectors), labels)
    return scaler, model


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class Classifier:
    """Scaler + model, predicting from embedded vectors."""

    scaler: StandardScaler
    model: SVC

    @property
    def classes(self) -> list:
        return self.model.classes_.tolist()

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities: a softmax of the one-vs-rest decision values (votes
        plus confidence), a ranking of the classes rather than calibrated odds."""
        decision = self.model.decision_function(self.scaler.transform(vectors))
        if decision.ndim == 1:  # two classes: one signed margin
            decision = np.stack([-decision, decision], axis=1)
        return softmax(decision)

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        return self.model.predict(self.scaler.transform(vectors))


def evaluate(classifier: Classifier, vectors: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    if len(labels) == 0:
        return {}
    quality = classification_quality(labels, classifier.predict(vectors))
    return {
        "accuracy": round(quality["accuracy"], 4),
        "balanced_accuracy": round(quality["balanced_accuracy"], 4),
        "f1_macro": round(quality["f1"], 4),
        "rows": len(labels),
    }
