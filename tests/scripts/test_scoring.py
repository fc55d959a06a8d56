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
    assert scorer.scores(vector).sum() == pytest.approx(1)
