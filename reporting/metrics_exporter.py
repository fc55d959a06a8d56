"""Prometheus exporter of the reporting figures: data drift and classification quality.

    cd reporting && python metrics_exporter.py          # serves http://0.0.0.0:9108/metrics
    cd reporting && python metrics_exporter.py --once   # prints the figures once and exits

The code is the package's (mlstack.reporting.exporter; `python -m
mlstack.reporting.exporter` is the same command): monitoring's compose file and k8s
run this file.
"""

from mlstack.reporting.exporter import main

if __name__ == "__main__":
    raise SystemExit(main())
