"""Prometheus metrics of the serving API, correct under `uvicorn --workers N`.

    instrument(app, settings)             # middleware + GET /metrics (METRICS_PATH)
    set_model_version(version)            # when a model is loaded or swapped
    observe_prediction(label)             # after each /predict
    observe_predictions(labels)           # after a batched /predict, one per image
    observe_feedback(correct, rows=rows)  # after each stored /feedback row
    observe_retrain(seconds, version)     # after each retraining
    observe_gate(accepted)                # the promotion gate's decision on it
    observe_trigger(trigger, fired)       # each check of a retraining trigger
    observe_unknown_categories(unknown)   # a table row's categories unseen in training

Every worker writes its values to small memory-mapped files in one folder
(prometheus-client's multiprocess mode, folder.py) and /metrics sums them, so a scrape
gives the whole server's figures whichever worker answers it. Importing this package
does nothing: the folder is chosen and the metrics made on first use.
"""

from .exposition import build_registry, render
from .folder import forget_this_worker, multiproc_dir
from .instrument import instrument
from .middleware import PrometheusMiddleware
from .record import (
    observe_feedback,
    observe_gate,
    observe_prediction,
    observe_predictions,
    observe_retrain,
    observe_trigger,
    observe_unknown_categories,
    set_model_version,
)

__all__ = [
    "PrometheusMiddleware",
    "build_registry",
    "forget_this_worker",
    "instrument",
    "multiproc_dir",
    "observe_feedback",
    "observe_gate",
    "observe_prediction",
    "observe_predictions",
    "observe_retrain",
    "observe_trigger",
    "observe_unknown_categories",
    "render",
    "set_model_version",
]
