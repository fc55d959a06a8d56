"""The numpy scorer used by the serving API gives scikit-learn's own scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlstack.artifacts import ArtifactStore
from mlstack.pipeline import read_reference
from mlstack.scoring import FastScorer
from mlstack.settings import PipelineSettings
from mlstack.training import Classifier, fit
from sklearn.linear_model import LogisticRegression


def test_fast_scores_equal_scikit_learns(trained_root: Path) -> None:
    settings = PipelineSettings(project_root=trained_root)
    artifacts = ArtifactStore(settings.artifacts_dir).load()
    scorer = FastScorer(artifacts.classifier)
    assert scorer._fast
    ref = read_reference(settings, artifacts.embedding.n_components)
    rng = np.random.default_rng(0)
    # Reference rows and far-off vectors (where scores are nearly flat) alike.
    vectors = np.vstack([ref.vectors[::7], rng.normal(0, 5, (50, ref.vectors.shape[1]))])
    expected = artifacts.classifier.scores(vectors)
    got = np.array([scorer.scores(v) for v in vectors])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    # A batch (a batched /predict) is scored in one pass, to the same scores.
    np.testing.assert_allclose(scorer.scores(vectors), got, rtol=0, atol=1e-12)
    # One vector as a list (a single /predict): the votes and softmax in Python.
    np.testing.assert_allclose([scorer.one(v) for v in vectors], got, rtol=0, atol=1e-12)


def test_other_models_are_scored_through_scikit_learn(trained_root: Path) -> None:
    settings = PipelineSettings(project_root=trained_root)
    artifacts = ArtifactStore(settings.artifacts_dir).load()
    ref = read_reference(settings, artifacts.embedding.n_components)
    scaler, _ = fit(ref.vectors[:300], ref.targets[:300])
    model = LogisticRegression(max_iter=500).fit(scaler.transform(ref.vectors), ref.targets)
    classifier = Classifier(scaler, model)
    scorer = FastScorer(classifier)
    assert not scorer._fast
    vector = ref.vectors[5]
    np.testing.assert_allclose(scorer.scores(vector), classifier.scores(vector[None])[0])
    np.testing.assert_allclose(scorer.one(vector), classifier.scores(vector[None])[0])
    assert scorer.scores(vector).sum() == pytest.approx(1)
    np.testing.assert_allclose(scorer.scores(ref.vectors[:9]), classifier.scores(ref.vectors[:9]))


def test_two_classes_are_scored_by_numpy_too(trained_root: Path) -> None:
    """A two-class SVC (a binary table such as breast cancer) has one signed margin;
    the numpy scorer gives scikit-learn's scores for it as well."""
    settings = PipelineSettings(project_root=trained_root)
    ref = read_reference(settings, ArtifactStore(settings.artifacts_dir).manifest().n_components)
    two = np.isin(ref.targets, [3, 8])
    for labels in (ref.targets[two], np.where(ref.targets[two] == 3, "benign", "malignant")):
        classifier = Classifier(*fit(ref.vectors[two], labels))
        scorer = FastScorer(classifier)
        assert scorer._fast
        rng = np.random.default_rng(1)
        vectors = np.vstack([ref.vectors[two][::5], rng.normal(0, 5, (20, ref.vectors.shape[1]))])
        expected = classifier.scores(vectors)
        got = np.array([scorer.scores(v) for v in vectors])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(scorer.scores(vectors), got, rtol=0, atol=1e-12)
        np.testing.assert_allclose([scorer.one(v) for v in vectors], got, rtol=0, atol=1e-12)
        assert [scorer.classes[i] for i in got.argmax(axis=1)] == classifier.predict(
            vectors
        ).tolist()
