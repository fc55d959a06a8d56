"""Reporting: the Evidently project of the deployed classifier (data drift and
classification quality per batch of feedback rows) and the Prometheus exporter of
the same figures. Run with `python -m mlstack.reporting` (or reporting/project.py)
and `python -m mlstack.reporting.exporter` (or reporting/metrics_exporter.py)."""
