"""The real serving API (`uvicorn api:app` in serving/, two workers) scraped by a real
Prometheus: predictions of real images, feedback, a retraining, bad input; the figures
read back through Prometheus' query API match what the API answered."""

from __future__ import annotations

import base64
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from mlstack.settings import PipelineSettings

from tests.monitoring.servers import (
    REPO_ROOT,
    clean_env,
    prom_query,
    prom_value,
    prometheus_binary,
    prometheus_config,
    prometheus_server,
    scrape,
    uvicorn_server,
    wait_until,
)

K = 5

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        prometheus_binary() is None,
        reason="Prometheus is not installed: apt-get install -y prometheus (Debian's package)",
    ),
]


def samples(project: PipelineSettings) -> list[tuple[int, str]]:
    """(true label, base64 PNG) of the held-out sample images."""
    return [
        (int(p.name.split("_")[0]), base64.b64encode(p.read_bytes()).decode())
        for p in sorted(project.samples_dir.glob("*.png"))
    ]


def test_serving_api_metrics_through_prometheus(project: PipelineSettings, tmp_path: Path) -> None:
    env = clean_env(
        DATA_DIR=str(project.data_dir),
        ARTIFACTS_DIR=str(project.artifacts_dir),
        RETRAIN_EVERY_K=str(K),
        RETRAIN_WAIT_SECONDS="300",  # the K-th feedback answers once its retraining is done
        TMPDIR=str(tmp_path),
    )
    images = samples(project)[:20]
    assert len(images) == 20

    with (
        uvicorn_server(
            "api:app",
            cwd=REPO_ROOT / "serving",
            env=env,
            log=tmp_path / "uvicorn.log",
            workers=2,
        ) as (base, _),
        prometheus_server(
            prometheus_config({"serving-api": base.removeprefix("http://")}),
            tmp_path / "prometheus",
        ) as prometheus,
    ):
        first_version = scrape(base + "/metrics")["mlstack_model_version{}"]

        def predict(image: str) -> dict:
            answer = httpx.post(
                f"{base}/predict", json={"image": image}, headers={"Connection": "close"}
            )
            return answer.raise_for_status().json()

        with ThreadPoolExecutor(4) as pool:
            predictions = list(pool.map(predict, [image for _, image in images]))
        by_label = Counter(str(p["prediction"]) for p in predictions)

        # K feedback rows, one after the other: the K-th retrains and waits for it.
        correct = 0
        for (label, image), answer in list(zip(images, predictions, strict=True))[:K]:
            body = {"image": image, "prediction": answer["prediction"], "target": label}
            stored = httpx.post(f"{base}/feedback", json=body, timeout=320)
            stored.raise_for_status()
            correct += answer["prediction"] == label
        assert stored.json()["retrained"] is True
        new_version = stored.json()["model_version"]
        assert new_version > first_version

        assert httpx.post(f"{base}/predict", json={"image": "not base64!"}).status_code == 400

        def series(expr: str) -> dict[str, float]:
            return {
                next(iter(r["metric"].values()), ""): float(r["value"][1])
                for r in prom_query(prometheus, expr)
            }

        wait_until(
            lambda: series("sum by (label) (mlstack_predictions_total)") == by_label,
            30,
            f"Prometheus to hold the predictions by label {dict(by_label)}",
        )
        wait_until(
            lambda: prom_value(prometheus, "mlstack_model_version") == new_version,
            30,
            f"model version {new_version}",
        )
        assert prom_value(prometheus, 'sum(mlstack_retrains_total{outcome="success"})') == 1
        assert prom_value(prometheus, "sum(mlstack_retrain_duration_seconds_count)") == 1
        assert prom_value(prometheus, "sum(mlstack_retrain_duration_seconds_sum)") > 0
        assert prom_value(prometheus, "max(mlstack_prod_data_rows)") == K
        assert prom_value(prometheus, "max(mlstack_feedback_accuracy)") == pytest.approx(
            correct / K
        )
        feedback = series("sum by (correct) (mlstack_feedback_total)")
        assert feedback.get("true", 0) == correct
        assert feedback.get("false", 0) == K - correct

        requests = series(
            'sum by (status) (mlstack_http_requests_total{route="/predict",method="POST"})'
        )
        assert requests == {"200": len(images), "400": 1}
        assert series('sum by (route) (mlstack_http_requests_total{route="/feedback"})') == {
            "/feedback": K
        }
        assert prom_value(prometheus, 'up{job="serving-api"}') == 1
