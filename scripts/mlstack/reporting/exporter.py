"""Prometheus exporter of the reporting figures: data drift and classification quality.

    python -m mlstack.reporting.exporter          # serves http://0.0.0.0:9108/metrics
    python -m mlstack.reporting.exporter --once   # prints the figures once and exits

(`cd reporting && python metrics_exporter.py` runs the same.) It computes the figures
itself from data/ref_data.csv and data/prod_data.csv, read as the report reads them,
so it needs nothing from the Evidently workspace and is never behind the data:

- drift share: mlstack.drift, the report's own test (Kolmogorov-Smirnov per embedding
  column), production vs reference: Grafana's DataDrift alert and the dashboard agree;
- classification quality of the production rows (prediction vs target): mlstack.quality,
  the report's own figures (macro over the labels present, even for two labels).

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

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..drift import column_drift
from ..errors import DatabaseUnavailableError
from ..prod_store import LABEL_COLUMNS
from ..quality import classification_quality
from ..settings import ReportingSettings
from ..stores import database_stamp, uses_database
from .data import read_feedback, read_reference

log = logging.getLogger(__name__)


@dataclass
class Figures:
    """One computation's results; absent figures are not exported."""

    values: dict[str, float] = field(default_factory=dict)
    computed_at: float = 0.0
    seconds: float = 0.0


def compute(settings: ReportingSettings) -> Figures:
    started = time.perf_counter()
    ref, columns = read_reference(settings)
    if not columns:
        raise ValueError(f"{settings.ref_data_path} has no embedding column")
    prod = read_feedback(settings, columns).dropna(subset=[*columns, *LABEL_COLUMNS])
    total_rows = len(prod)
    if settings.report_window_rows:
        prod = prod.tail(settings.report_window_rows)
    values: dict[str, float] = {
        "ref_rows": float(len(ref)),
        "prod_rows": float(total_rows),
        "window_rows": float(len(prod)),
        "columns": float(len(columns)),
    }
    values.update(classification_quality(prod["target"], prod["prediction"]))
    if len(prod) >= settings.report_min_drift_rows:
        drift = column_drift(ref, prod, columns, settings.report_drift_share)
        values["drift_share"] = drift.share
        values["drifted_columns"] = float(drift.drifted)
        values["dataset_drift"] = float(drift.dataset_drift)
    return Figures(values, time.time(), time.perf_counter() - started)


HELP = {
    "drift_share": "Share of embedding columns whose Kolmogorov-Smirnov test finds drift "
    "(production vs reference, p <= 0.05)",
    "drifted_columns": "Embedding columns found drifted",
    "dataset_drift": "1 when the drift share reaches REPORT_DRIFT_SHARE",
    "f1": "Macro F1 of the production rows' predictions against their targets",
    "precision": "Macro precision of the production rows",
    "recall": "Macro recall of the production rows",
    "balanced_accuracy": "Balanced accuracy of the production rows",
    "accuracy": "Accuracy of the production rows",
    "ref_rows": "Reference rows compared (a fixed sample beyond REPORT_MAX_REFERENCE_ROWS)",
    "prod_rows": "Complete rows in prod_data.csv",
    "window_rows": "Production rows the figures are computed on",
    "columns": "Embedding columns compared",
}


class ReportCollector(Collector):
    """Exports the latest figures; a background thread keeps them current."""

    def __init__(self, settings: ReportingSettings) -> None:
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
        if uses_database(self.settings):  # the feedback table, not prod_data.csv
            try:
                stamp.append(database_stamp(self.settings))
            except DatabaseUnavailableError as exc:
                stamp.append(str(exc))
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
    settings = ReportingSettings()
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
    log.info(
        "serving /metrics on %s:%d (data in %s, checked every %ss)",
        settings.exporter_host,
        server.server_address[1],
        settings.data_dir,
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
