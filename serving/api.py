"""The serving API's entry file, where the brief puts it: `cd serving && uvicorn api:app`.

The app itself is the installed package's (mlstack.serving.app), which also runs as
`uvicorn mlstack.serving.app:app` or `python -m mlstack.serving` from anywhere.
"""

from mlstack.serving.app import app

__all__ = ["app"]
