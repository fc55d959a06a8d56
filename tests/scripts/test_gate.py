"""The promotion gate's rules, one at a time (pure logic: scores in, decision out)."""

import numpy as np
import pytest
from mlstack.artifacts import ArtifactError, ArtifactStore
from mlstack.gate import GateRules, in_feedback_holdout, judge
from mlstack.pipeline import read_reference
from mlstack.prod_store import ProdDataStore
from mlstack.retraining import retrain
from mlstack.settings import PipelineSettings

RULES = GateRules(tolerance=0.02, floor=0.5, min_feedback_rows=20)


def scores(ref: float, fb: float | None = None, fb_rows: int = 50) -> dict:
    out = {"reference": {"f1_macro": ref, "balanced_accuracy": ref, "rows": 360}}
    if fb is not None:
        out["feedback"] = {"f1_macro": fb, "balanced_accuracy": fb, "rows": fb_rows}
    return out


def test_first_model_passes_on_the_floor_alone() -> None:
    assert judge(scores(0.9), None, RULES).accepted
    low = judge(scores(0.4), None, RULES)
    assert not low.accepted
    assert "floor" in low.reason


def test_a_candidate_within_the_tolerance_passes() -> None:
    decision = judge(scores(0.975), scores(0.99), RULES)
    assert decision.accepted, decision.reason
    assert decision.champion == scores(0.99)


def test_a_candidate_losing_on_the_reference_is_rejected_whatever_it_gains_on_feedback() -> None:
    decision = judge(scores(0.95, fb=1.0), scores(0.99, fb=0.5), RULES)
    assert not decision.accepted
    assert "reference" in decision.reason
    assert "f1_macro" in decision.reason


def test_losses_cannot_add_up_against_the_best_version() -> None:
    # Each step loses 0.015 < tolerance against its champion, but 0.03 against the best.
    decision = judge(scores(0.96), scores(0.975), RULES, best_reference=scores(0.99)["reference"])
    assert not decision.accepted
    assert "best version" in decision.reason


def test_the_feedback_holdout_counts_once_it_holds_enough_rows() -> None:
    worse_on_feedback = judge(scores(0.99, fb=0.80), scores(0.99, fb=0.90), RULES)
    assert not worse_on_feedback.accepted
    assert "feedback" in worse_on_feedback.reason
    too_few = judge(scores(0.99, fb=0.80, fb_rows=5), scores(0.99, fb=0.90, fb_rows=5), RULES)
    assert too_few.accepted


def test_real_improvement_on_feedback_passes() -> None:
    assert judge(scores(0.985, fb=0.97), scores(0.99, fb=0.60), RULES).accepted


def test_the_feedback_holdout_is_stable_and_near_its_share() -> None:
    keys = [f"id-{i}" for i in range(10_000)]
    mask = in_feedback_holdout(keys, 0.2)
    assert mask.dtype == bool
    assert mask.mean() == pytest.approx(0.2, abs=0.02)
    np.testing.assert_array_equal(mask, in_feedback_holdout(list(keys), 0.2))
    assert not in_feedback_holdout(keys, 0.0).any()
    assert in_feedback_holdout(keys[:10], 1.0).all()


# -- the gate inside a real retraining, on real files ---------------------------------


def _feedback(project: PipelineSettings, rows: np.ndarray, shift: int, first_id: int = 0) -> None:
    store = ArtifactStore(project.artifacts_dir)
    n = store.manifest().n_components
    ref = read_reference(project, n)
    prod = ProdDataStore(project.prod_data_path, n)
    for i, row in enumerate(rows):
        target = int(ref.targets[row])
        prod.append(
            ref.vectors[row],
            (target + shift) % 10,
            target,
            timestamp="t",
            model_version=1,
            prediction_id=f"p{first_id + i}",
        )


def test_a_burst_of_contested_feedback_is_held_back(project: PipelineSettings) -> None:
    store = ArtifactStore(project.artifacts_dir)
    ref = read_reference(project, store.manifest().n_components)
    # Every label wrong on purpose (the prediction shown was right), each image sent
    # four times: enough to outvote the reference rows of those images.
    _feedback(project, np.tile(ref.train[:700], 4), shift=1)
    manifest = retrain(project)
    assert manifest.gate["accepted"]
    assert not manifest.gate["trained_on_contested"]
    assert manifest.rows["prod_contested"] == manifest.rows["prod_burst"] == 2800
    assert manifest.rows["prod"] == 0
    assert store.current_version() == 2


def test_contested_rows_outside_a_burst_are_trained_on_unless_the_gate_objects(
    project: PipelineSettings,
) -> None:
    store = ArtifactStore(project.artifacts_dir)
    ref = read_reference(project, store.manifest().n_components)
    # 40% contested: no burst. Sixty images, wrong ten times each, among correct rows.
    _feedback(project, np.tile(ref.train[:60], 10), shift=1)
    _feedback(project, np.tile(ref.train[100:400], 3), shift=0, first_id=600)
    manifest = retrain(project)
    assert manifest.rows["prod_burst"] == 0
    first_try = manifest.gate["first_try"]
    assert not first_try["accepted"]
    assert "reference" in first_try["reason"]
    # The second candidate, trained without the contested rows, is what went live.
    assert manifest.gate["accepted"]
    assert not manifest.gate["trained_on_contested"]
    assert store.current_version() == 2


def test_a_rejected_candidate_is_kept_and_never_served(project: PipelineSettings) -> None:
    strict = project.model_copy(update={"gate_floor": 0.999})
    store = ArtifactStore(strict.artifacts_dir)
    manifest = retrain(strict)
    assert manifest.rejected
    assert "floor" in manifest.gate["reason"]
    assert store.current_version() == 1
    assert store.versions() == [1, 2]
    with pytest.raises(ArtifactError, match="rejected"):
        store.activate(manifest.version)
    assert store.current_version() == 1


def test_correct_feedback_goes_live(project: PipelineSettings) -> None:
    store = ArtifactStore(project.artifacts_dir)
    ref = read_reference(project, store.manifest().n_components)
    _feedback(project, ref.train[:200], shift=0)
    manifest = retrain(project)
    assert manifest.gate["accepted"], manifest.gate
    assert store.current_version() == manifest.version == 2


def test_with_the_gate_off_everything_goes_live(project: PipelineSettings) -> None:
    settings = project.model_copy(update={"gate": False})
    store = ArtifactStore(settings.artifacts_dir)
    ref = read_reference(settings, store.manifest().n_components)
    _feedback(settings, ref.train[:700], shift=1)
    manifest = retrain(settings)
    assert store.current_version() == manifest.version == 2
    assert manifest.rows["prod_holdout"] == 0
