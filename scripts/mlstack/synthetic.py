"""The former name of mlstack.fake_feedback, kept only until its last importers
(tests/serving/test_http.py, benchmarks/serving.py) import mlstack.fake_feedback."""

from .fake_feedback import write_fake_feedback


def write_synthetic_prod(settings, rows: int) -> None:
    write_fake_feedback(settings, rows, drift=0.3, predicted=False)
