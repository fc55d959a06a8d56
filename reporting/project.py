"""The Evidently project of the deployed classifier: data drift and classification quality.

    cd reporting && python project.py            # one run: the workspace brought up to date
    cd reporting && python project.py --every 60 # and again every minute

The code is the package's (mlstack.reporting; `python -m mlstack.reporting` is the
same command): this file is the entry point the brief puts here.
"""

from mlstack.reporting.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
