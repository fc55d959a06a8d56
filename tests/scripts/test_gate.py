"""The promotion gate's rules, one at a time (pure logic: scores in, decision out)."""

import numpy as np
import pytest
from mlstack.gate import GateRules, in_feedback_holdout, judge

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
