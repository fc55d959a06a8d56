"""Prometheus exporter of the reporting figures: data drift and classification quality.

    cd reporting && python metrics_exporter.py            # serves http://0.0.0.0:9108/metrics
    cd reporting && python metrics_exporter.py --once     # prints the figures once and exits

It computes the figures itself from data/ref_data.csv and data/prod_data.csv, so it
needs nothing from the Evidently workspace and is never behind the data:

- drift share: Evidently's `DriftedColumnsCount` over the embedding columns (the same
  per-column tests and defaults as `DataDriftPreset`), production vs reference;
- classification quality of the production rows (prediction vs target), with
  scikit-learn: F1, precision and recall (macro over the labels), balanced accuracy
  and accuracy. scikit-learn keeps the multiclass maths even when a batch holds two
  labels only.

A background thread recomputes them when either file has changed, at most every
REPORT_REFRESH_SECONDS; a scrape only reads the latest figures, so it is instant.
REPORT_WINDOW_ROWS > 0 limits both to the newest production rows.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from mlstack.settings import PipelineSettings
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import Field
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
)

log = logging.getLogger("reporting.exporter")

LABEL_COLUMNS = ("target", "prediction")
METADATA_COLUMNS = ("timestamp", "model_version", "prediction_id")


class ExporterSettings(PipelineSettings):
    exporter_host: str = Field(default="0.0.0.0", description="Address to listen on")
    exporter_port: int = Field(default=9108, ge=0, le=65535, description="Port of /metrics")
    report_refresh_seconds: float = Field(
        default=30.0, gt=0, description="Seconds between checks for new data"
    )
    report_window_rows: int = Field(
        default=0, ge=0, description="Newest production rows to use; 0 uses them all"
    )
    report_min_drift_rows: int = Field(
        default=5, ge=1, description="Fewer production rows than this: no drift figure"
    )
    report_drift_share: float = Field(
        default=0.5, gt=0, le=1, description="Share of drifted columns that flags the data set"
    )


@dataclass
class Figures:
    """One computation's results; absent figures are not exported."""

    values: dict[str, float] = field(default_factory=dict)
    computed_at: float = 0.0
    seconds: float = 0.0


def feature_columns(ref: pd.DataFrame, prod: pd.DataFrame) -> list[str]:
    """The embedding columns both files share (PCA_1..PCA_n), in the reference's order."""
    skip = {*LABEL_COLUMNS, *METADATA_COLUMNS}
    return [c for c in ref.columns if c not in skip and c in prod.columns]


def read_frames(settings: ExporterSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not settings.ref_data_path.exists():
        raise FileNotFoundError(f"{settings.ref_data_path} does not exist yet")
    ref = pd.read_csv(settings.ref_data_path)
    prod_path = settings.prod_data_path
    if prod_path.exists() and prod_path.stat().st_size > 0:
        prod = pd.read_csv(prod_path, on_bad_lines="skip")
    else:
        prod = pd.DataFrame(columns=[*ref.columns, "prediction"])
    return ref, prod


def classification_quality(target: pd.Series, prediction: pd.Series) -> dict[str, float]:
    # Labels as text: a CSV column of 7s and one of "7"s must still compare equal.
    y_true = target.astype(str).to_numpy()
    y_pred = prediction.astype(str).to_numpy()
    labels = np.unique(np.concatenate([y_true, y_pred]))
    macro = {"labels": labels, "average": "macro", "zero_division": 0}
    return {
        "f1": float(f1_score(y_true, y_pred, **macro)),
        "precision": float(precision_score(y_true, y_pred, **macro)),
        "recall": float(recall_score(y_true, y_pred, **macro)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
    }


def drift(ref: pd.DataFrame, prod: pd.DataFrame, columns: list[str], share: float) -> dict:
    # Evidently takes seconds to import: only the exporter's worker thread pays for it.
    from evidently import Report
    from evidently.metrics import DriftedColumnsCount

    snapshot = Report([DriftedColumnsCount(columns=columns, drift_share=share)]).run(
        prod[columns], ref[columns]
    )
    value = snapshot.dict()["metrics"][0]["value"]
    return {
        "drift_share": float(value["share"]),
        "drifted_columns": float(value["count"]),
        "dataset_drift": float(value["share"] >= share),
    }


def compute(settings: ExporterSettings) -> Figures:
    started = time.perf_counter()
    ref, prod = read_frames(settings)
    columns = feature_columns(ref, prod)
    if not columns:
        raise ValueError("ref_data.csv and prod_data.csv share no embedding column")
    prod = prod.dropna(subset=[*columns, *LABEL_COLUMNS])
    total_rows = len(prod)
    if settings.report_window_rows:
        prod = prod.tail(settings.report_window_rows)
    values: dict[str, float] = {
        "ref_rows": float(len(ref)),
        "prod_rows": float(total_rows),
        "window_rows": float(len(prod)),
        "columns": float(len(columns)),
    }
    if len(prod):
        values.update(classification_quality(prod["target"], prod["prediction"]))
    if len(prod) >= settings.report_min_drift_rows:
        values.update(drift(ref, prod, columns, settings.report_drift_share))
    return Figures(values, time.time(), time.perf_counter() - started)


HELP = {
    "drift_share": "Share of embedding columns Evidently finds drifted (production vs reference)",
    "drifted_columns": "Embedding columns Evidently finds drifted",
    "dataset_drift": "1 when the drift share reaches REPORT_DRIFT_SHARE",
    "f1": "Macro F1 of the production rows' predictions against their targets",
    "precision": "Macro precision of the production rows",
    "recall": "Macro recall of the production rows",
    "balanced_accuracy": "Balanced accuracy of the production rows",
    "accuracy": "Accuracy of the production rows",
    "ref_rows": "Rows in ref_data.csv",
    "prod_rows": "Complete rows in prod_data.csv",
    "window_rows": "Production rows the figures are computed on",
    "columns": "Embedding columns compared",
}


class ReportCollector(Collector):
    """Exports the latest figures; a background thread keeps them current."""

    def __init__(self, settings: ExporterSettings) -> None:
        self.settings = settings
        self.figures = Figures()
        self.errors = 0
        self.last_error = ""
        self._stamp: tuple | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _files_stamp(self) -> tuple:
        stamp = []
        for path in (self.settings.ref_data_path, self.settings.prod_data_path):
            try:
                stat = path.stat()
                stamp.append((stat.st_size, stat.st_mtime_ns))
            except FileNotFoundError:
                stamp.append(None)
        return tuple(stamp)

    def refresh(self, force: bool = False) -> bool:
        """Recompute if the files changed since the last success; True if it did."""
        stamp = self._files_stamp()
        if not force and stamp == self._stamp:
            return False
        try:
            figures = compute(self.settings)
        except Exception as exc:
            with self._lock:
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("could not compute the report figures: %s", self.last_error)
            return False
        with self._lock:
            self.figures, self._stamp, self.last_error = figures, stamp, ""
        log.info(
            "figures on %d production rows in %.2fs: %s",
            int(figures.values.get("window_rows", 0)),
            figures.seconds,
            {k: round(v, 4) for k, v in figures.values.items()},
        )
        return True

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self.refresh()
                self._stop.wait(self.settings.report_refresh_seconds)

        self._thread = threading.Thread(target=loop, name="report-figures", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self._lock:
            figures, errors, failing = self.figures, self.errors, bool(self.last_error)
        for name, value in figures.values.items():
            family = GaugeMetricFamily(f"mlstack_report_{name}", HELP.get(name, name))
            family.add_metric([], value)
            yield family
        up = GaugeMetricFamily(
            "mlstack_report_up", "1 when the latest computation of the figures succeeded"
        )
        up.add_metric([], 0.0 if failing or not figures.computed_at else 1.0)
        yield up
        if figures.computed_at:
            stamp = GaugeMetricFamily(
                "mlstack_report_last_success_timestamp_seconds",
                "Unix time of the latest successful computation",
            )
            stamp.add_metric([], figures.computed_at)
            yield stamp
            took = GaugeMetricFamily(
                "mlstack_report_compute_seconds", "Time the latest computation took"
            )
            took.add_metric([], figures.seconds)
            yield took
        failures = CounterMetricFamily(
            "mlstack_report_errors", "Computations of the figures that failed"
        )
        failures.add_metric([], errors)
        yield failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="print the figures once and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = ExporterSettings()
    collector = ReportCollector(settings)
    registry = CollectorRegistry()
    registry.register(collector)
    if args.once:
        collector.refresh(force=True)
        sys.stdout.write(generate_latest(registry).decode())
        return 0 if not collector.last_error else 1
    server, thread = start_http_server(
        settings.exporter_port, addr=settings.exporter_host, registry=registry
    )
    port = server.server_address[1]
    log.info(
        "serving /metrics on %s:%d (data in %s, checked every %ss)",
        settings.exporter_host,
        port,
        Path(settings.data_dir),
        settings.report_refresh_seconds,
    )
    collector.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        collector.stop()
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
