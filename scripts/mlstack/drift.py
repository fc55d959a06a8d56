"""The one drift test of the stack: production vectors against the reference, one
two-sample Kolmogorov-Smirnov test per embedding column.

A column drifts when the test's p-value is at most P_VALUE (0.05); the data set
drifts when at least `drift_share` of its columns do. The Evidently report is
configured with the same test (`evidently_options`, Evidently's "ks" with this
threshold), and the Prometheus exporter, behind Grafana's DataDrift alert, computes
`column_drift` itself: the dashboard and the alert show one figure. Evidently's
automatic pick for a reference of over 1,000 rows, the normed Wasserstein distance
at 0.1, would flag most columns of a 100-row batch drawn from the reference itself
(sampling noise alone).

Only scipy: the serving image, which has no Evidently, can use it too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

METHOD = "ks"  # Evidently's name of the test
P_VALUE = 0.05


@dataclass(frozen=True)
class Drift:
    p_values: dict[str, float]  # column -> p-value of its test
    drift_share: float  # the threshold the data set's flag uses

    @property
    def columns(self) -> dict[str, bool]:
        """column -> drifted."""
        return {column: p <= P_VALUE for column, p in self.p_values.items()}

    @property
    def drifted(self) -> int:
        return sum(self.columns.values())

    @property
    def share(self) -> float:
        return self.drifted / len(self.p_values) if self.p_values else 0.0

    @property
    def dataset_drift(self) -> bool:
        return self.share >= self.drift_share


def _finite(values: pd.Series) -> np.ndarray:
    array = values.to_numpy(dtype=np.float64)
    return array[np.isfinite(array)]


def column_drift(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], drift_share: float = 0.5
) -> Drift:
    """The test on each of `columns` (missing and infinite values left out, as Evidently
    does); a column empty on either side is an error."""
    p_values = {}
    for column in columns:
        ref, cur = _finite(reference[column]), _finite(current[column])
        if not len(ref) or not len(cur):
            side = "reference" if not len(ref) else "current"
            raise ValueError(f"column {column} has no values in the {side} data")
        p_values[column] = float(ks_2samp(ref, cur)[1])
    return Drift(p_values, drift_share)


def evidently_options(drift_share: float = 0.5) -> dict:
    """The same test, as options of Evidently's DataDriftPreset/DriftedColumnsCount."""
    return {"num_method": METHOD, "num_threshold": P_VALUE, "drift_share": drift_share}
