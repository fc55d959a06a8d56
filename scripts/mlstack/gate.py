"""The promotion gate: a retrained candidate goes live only if it is no worse.

Both models are scored on the same frozen evaluation data, in two parts judged
apart:

- the reference hold-out (ref_data.csv rows never trained on) is trusted: a
  candidate may not lose more than `tolerance` of macro F1 or balanced accuracy
  on it, against the version in use nor against the best version ever accepted
  (so many small losses cannot add up to a large one), whatever it gains on
  feedback, which can itself be wrong;
- the feedback hold-out (the production rows whose `prediction_id` hashes into
  the hold-out share, never trained on) shows whether the candidate learned what
  production asks: it may not lose more than `tolerance` there either, once the
  hold-out holds `min_feedback_rows` rows.

And both figures on the reference hold-out must reach the absolute `floor`. The
first model has no champion: the floor alone decides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

JUDGED = ("f1_macro", "balanced_accuracy")


def in_feedback_holdout(keys: Iterable[str], share: float) -> np.ndarray:
    """A stable mask: the rows whose key (their prediction_id) hashes below `share`.
    The same key always lands on the same side, on every machine and every run."""
    keys = list(keys)
    limit = int(share * 2**32)
    return np.array(
        [int.from_bytes(hashlib.sha256(str(k).encode()).digest()[:4], "big") < limit for k in keys],
        dtype=bool,
    )


@dataclass(frozen=True)
class GateRules:
    tolerance: float = 0.02
    floor: float = 0.5
    min_feedback_rows: int = 20


@dataclass
class Decision:
    accepted: bool
    reason: str
    candidate: dict[str, Any] = field(default_factory=dict)
    champion: dict[str, Any] | None = None
    best: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _losses(
    part: str, candidate: Mapping[str, float], other: Mapping[str, float], against: str, tol: float
) -> list[str]:
    out = []
    for name in JUDGED:
        if name in candidate and name in other and candidate[name] < other[name] - tol:
            out.append(
                f"{name} on the {part} hold-out {candidate[name]:.4f} < {against}'s "
                f"{other[name]:.4f} - {tol:g}"
            )
    return out


def judge(
    candidate: Mapping[str, Mapping[str, float]],
    champion: Mapping[str, Mapping[str, float]] | None,
    rules: GateRules,
    best_reference: Mapping[str, float] | None = None,
) -> Decision:
    """Decide on a candidate from its scores and the champion's, each
    {"reference": {...}, "feedback": {...}} as `mlstack.quality` gives them."""
    ref = candidate.get("reference", {})
    below = [
        f"{n} {ref.get(n, 0.0):.4f} < floor {rules.floor:g}"
        for n in JUDGED
        if ref.get(n, 0.0) < rules.floor
    ]
    decision = Decision(False, "", dict(candidate), dict(champion) if champion else None)
    decision.best = dict(best_reference) if best_reference else None
    if below:
        decision.reason = "below the floor on the reference hold-out: " + "; ".join(below)
        return decision
    if champion is None:
        decision.accepted, decision.reason = True, "first model: above the floor"
        return decision
    losses = _losses("reference", ref, champion.get("reference", {}), "champion", rules.tolerance)
    if best_reference:
        losses += _losses("reference", ref, best_reference, "best version", rules.tolerance)
    fb, fb_champion = candidate.get("feedback", {}), champion.get("feedback", {})
    if fb.get("rows", 0) >= rules.min_feedback_rows:
        losses += _losses("feedback", fb, fb_champion, "champion", rules.tolerance)
    if losses:
        decision.reason = "worse than allowed: " + "; ".join(losses)
        return decision
    decision.accepted = True
    decision.reason = "no worse than the champion within the tolerance"
    return decision
