"""When to retrain: the brief's three triggers, any combination (RETRAIN_POLICY).

- every_k: every RETRAIN_EVERY_K feedback rows (the default, the brief's loop);
- drift: the share of drifted PCA columns over the newest TRIGGER_WINDOW_ROWS
  feedback rows (mlstack.drift, the report's own test) reaches DRIFT_THRESHOLD;
- performance: the accuracy of the newest TRIGGER_WINDOW_ROWS rows (true label
  against the prediction shown) falls below PERFORMANCE_THRESHOLD.

The window triggers are checked every TRIGGER_CHECK_EVERY rows, once the window is
full, and hold off while a retraining runs and for RETRAIN_COOLDOWN_SECONDS after
the newest version was trained (on any worker: its manifest's time), so a lasting
condition does not retrain over and over. Every check is logged with its figures
and counted (mlstack_retrain_triggers_total).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import pandas as pd

from mlstack.artifacts import ArtifactStore
from mlstack.drift import column_drift
from mlstack.embedding import feature_columns
from mlstack.labels import parse_label
from mlstack.prod_store import ProdDataStore
from mlstack.settings import ServingSettings

from . import metrics

log = logging.getLogger("serving.triggers")


@dataclass
class Triggers:
    settings: ServingSettings
    store: ArtifactStore
    prod: ProdDataStore
    n_components: int
    policy: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.policy = frozenset(self.settings.retrain_policy)

    @cached_property
    def reference(self) -> pd.DataFrame:
        return pd.read_csv(self.settings.ref_data_path, usecols=self.columns)

    @property
    def columns(self) -> list[str]:
        return feature_columns(self.n_components)

    def due(self, rows: int, busy: bool) -> str | None:
        """The reason to retrain now that prod_data.csv holds `rows` rows, or None."""
        if "every_k" in self.policy and rows % self.settings.retrain_every_k == 0:
            metrics.observe_trigger("every_k", fired=True)
            return f"{rows} feedback rows"
        window = self.settings.trigger_window_rows
        if not self.policy - {"every_k"} or rows < window:
            return None
        if rows % self.settings.trigger_check_every:
            return None
        frame = self.prod.read([*self.columns, "target", "prediction"]).tail(window)
        for trigger, fires, figure in self._checks(frame):
            held = busy or self._cooling_down()
            fired = fires and not held
            metrics.observe_trigger(trigger, fired=fired)
            log.info(
                "trigger %s at %d rows: %s%s",
                trigger,
                rows,
                figure,
                " -> retrain" if fired else " (held: retraining or cool-down)" if fires else "",
            )
            if fired:
                return f"{trigger}: {figure}"
        return None

    def _checks(self, frame: pd.DataFrame) -> list[tuple[str, bool, str]]:
        out = []
        if "performance" in self.policy:
            right = [
                parse_label(t) == parse_label(p)
                for t, p in zip(frame["target"], frame["prediction"], strict=True)
            ]
            accuracy = sum(right) / len(right)
            threshold = self.settings.performance_threshold
            out.append(
                (
                    "performance",
                    accuracy < threshold,
                    f"accuracy {accuracy:.3f} of the newest {len(right)} rows "
                    f"({'<' if accuracy < threshold else '>='} {threshold:g})",
                )
            )
        if "drift" in self.policy:
            drift = column_drift(self.reference, frame, self.columns)
            threshold = self.settings.drift_threshold
            out.append(
                (
                    "drift",
                    drift.share >= threshold,
                    f"{drift.drifted} of {len(drift.p_values)} columns drifted "
                    f"(share {drift.share:.2f}, threshold {threshold:g})",
                )
            )
        return out

    def _cooling_down(self) -> bool:
        versions = self.store.versions()
        if not versions or not self.settings.retrain_cooldown_seconds:
            return False
        newest = self.store.manifest(versions[-1])
        if newest.parent_version is None:  # the first training is no retraining
            return False
        trained = datetime.fromisoformat(newest.trained_at)
        age = (datetime.now(UTC) - trained).total_seconds()
        return age < self.settings.retrain_cooldown_seconds
