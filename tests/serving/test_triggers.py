"""The brief's three retraining triggers through a real uvicorn: each fires when its
condition holds and not otherwise, and a lasting condition is held by the cool-down."""

from __future__ import annotations

import httpx
import pytest
from mlstack.settings import PipelineSettings

from tests.support.serving import b64, sample_images

pytestmark = pytest.mark.timeout(300)

WINDOW = {"TRIGGER_WINDOW_ROWS": "20", "TRIGGER_CHECK_EVERY": "10", "RETRAIN_WAIT_SECONDS": "120"}


def post(url: str, data: bytes, prediction: int, target: int) -> dict:
    body = {"image": b64(data), "prediction": prediction, "target": target}
    answer = httpx.post(f"{url}/feedback", json=body, timeout=150)
    assert answer.status_code == 200, answer.text
    return answer.json()


def reasons(url: str) -> list[str]:
    return [v["reason"] for v in httpx.get(f"{url}/model/versions").json()[1:]]


def test_performance_fires_on_a_bad_window_then_cools_down(
    project: PipelineSettings, serve
) -> None:
    server = serve(
        project,
        k=1000,
        RETRAIN_POLICY="performance",
        PERFORMANCE_THRESHOLD="0.8",
        RETRAIN_COOLDOWN_SECONDS="3600",
        **WINDOW,
    )
    samples = sample_images(project)
    # 20 rows predicted right: the window's accuracy is 1.0, nothing fires.
    answers = [post(server.url, data, label, label) for label, data in samples[:20]]
    assert not any(a["retrained"] for a in answers)
    # 10 rows predicted wrong: accuracy 0.5 over the newest 20 < 0.8 at row 30.
    answers = [post(server.url, data, (label + 1) % 10, label) for label, data in samples[20:30]]
    assert [a["retrained"] for a in answers] == [False] * 9 + [True]
    (reason,) = reasons(server.url)
    assert reason.startswith("performance: accuracy 0.500 of the newest 20 rows")
    # Still bad at row 40, but within the cool-down: held, and logged so.
    answers = [post(server.url, data, (label + 1) % 10, label) for label, data in samples[30:40]]
    assert not any(a["retrained"] for a in answers)
    assert len(reasons(server.url)) == 1
    assert "trigger performance at 40 rows" in server.log()
    assert "(held: retraining or cool-down)" in server.log()
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'mlstack_retrain_triggers_total{fired="true",trigger="performance"} 1.0' in metrics
    assert 'mlstack_gate_decisions_total{decision="accepted"} 1.0' in metrics


def test_drift_fires_on_a_drifted_window_only(project: PipelineSettings, serve) -> None:
    server = serve(project, k=1000, RETRAIN_POLICY="drift", RETRAIN_COOLDOWN_SECONDS="0", **WINDOW)
    samples = sample_images(project)
    # 20 held-out images of every label: drawn like the reference, no drift.
    answers = [post(server.url, data, label, label) for label, data in samples[::2][:20]]
    assert not any(a["retrained"] for a in answers)
    assert "trigger drift at 20 rows" in server.log()
    # The same image twenty times: every column's distribution is a single point.
    label, data = samples[0]
    answers = [post(server.url, data, label, label) for _ in range(20)]
    assert any(a["retrained"] for a in answers)
    assert reasons(server.url)[0].startswith("drift: ")
    assert "columns drifted" in reasons(server.url)[0]


def test_every_k_alone_ignores_the_window(project: PipelineSettings, serve) -> None:
    server = serve(project, k=15, **WINDOW)  # RETRAIN_POLICY defaults to every_k
    samples = sample_images(project)
    answers = [post(server.url, data, (label + 1) % 10, label) for label, data in samples[:30]]
    assert [n + 1 for n, a in enumerate(answers) if a["retrained"]] == [15, 30]
    assert reasons(server.url) == ["15 feedback rows", "30 feedback rows"]
    assert "trigger performance" not in server.log()
