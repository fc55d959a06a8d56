"""The safe loop through a real uvicorn with two workers: a mislabelled burst never
reaches the served model (held back from training, stored all the same), correct
feedback goes live, a candidate below
the floor is kept and never served; GET /model/versions shows each decision;
POST /model/rollback is served by both workers and refuses a rejected version."""

from __future__ import annotations

import httpx
import pytest
from mlstack.artifacts import ArtifactStore
from mlstack.pipeline import read_reference
from mlstack.preprocessing import grid_to_png
from mlstack.retraining import retrain
from mlstack.settings import PipelineSettings
from sklearn.datasets import load_digits

from tests.support.serving import b64

pytestmark = pytest.mark.timeout(300)
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def training_images(settings: PipelineSettings, count: int) -> list[tuple[int, bytes]]:
    """PNGs of data-set images of the training split (never the reference hold-out)."""
    ref = read_reference(settings, ArtifactStore(settings.artifacts_dir).manifest().n_components)
    digits = load_digits()
    return [
        (int(digits.target[row]), grid_to_png(digits.images[row] / 16.0))
        for row in ref.train[:count]
    ]


def versions_seen(url: str, rounds: int = 20) -> set[int]:
    """The model versions that answered `rounds` predictions (both workers answer some)."""
    return {httpx.get(f"{url}/health").json()["model_version"] for _ in range(rounds)}


def test_mislabelled_burst_is_rejected_correct_feedback_goes_live_and_rollback(
    project: PipelineSettings, serve
) -> None:
    server = serve(project, workers=2, k=150, API_TOKEN=TOKEN, RETRAIN_WAIT_SECONDS="120")
    images = training_images(project, 60)
    # Each image sent five times with a wrong label: enough to outvote the reference.
    answers = []
    for i in range(300):
        label, data = images[i % len(images)]
        body = {"image": b64(data), "prediction": label, "target": (label + 1) % 10}
        answer = httpx.post(f"{server.url}/feedback", json=body, headers=AUTH, timeout=150)
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    retrained = [a for a in answers if a["retrained"]]
    assert [a["candidate_version"] for a in retrained] == [2, 3]
    listed = httpx.get(f"{server.url}/model/versions").json()
    first = listed[0]["metrics"]["holdout"]["f1_macro"]
    served = versions_seen(server.url)
    assert len(served) == 1
    (served_version,) = served
    entry = listed[served_version - 1]
    assert entry["status"] == "active"
    # Never more than the tolerance below the first model on the reference hold-out.
    assert entry["metrics"]["holdout"]["f1_macro"] >= first - 0.01
    for version in listed[1:]:
        # The shown predictions were right and every label contradicted them: a burst,
        # held back from training. The rows stay stored.
        assert version["rows"]["prod_burst"] == version["rows"]["prod_contested"] > 0
        assert not version["gate"]["trained_on_contested"]
    for label, data in images[:10]:
        answer = httpx.post(f"{server.url}/predict", json={"image": b64(data)}).json()
        assert answer["prediction"] == label

    # Correct labels on the same server: a new version goes live.
    for i in range(150):
        label, data = images[i % len(images)]
        body = {"image": b64(data), "prediction": label, "target": label}
        answer = httpx.post(f"{server.url}/feedback", json=body, headers=AUTH, timeout=150)
        assert answer.status_code == 200, answer.text
    assert answer.json()["candidate_version"] == 4
    assert answer.json()["promoted"] is True, httpx.get(f"{server.url}/model/versions").json()[-1]
    assert versions_seen(server.url) == {4}

    # A candidate below the floor (a retraining from the command line, on the
    # server's own files) is kept, never served.
    strict = PipelineSettings(project_root=project.project_root, gate_floor=0.999)
    assert retrain(strict).rejected
    assert versions_seen(server.url) == {4}

    # Rollback: token needed, unknown and rejected versions refused, both workers follow.
    rollback = f"{server.url}/model/rollback"
    assert httpx.post(rollback, json={"version": 1}).status_code == 401
    assert httpx.post(rollback, json={"version": 99}, headers=AUTH).status_code == 404
    refused = httpx.post(rollback, json={"version": 5}, headers=AUTH)
    assert refused.status_code == 409
    assert "rejected" in refused.json()["detail"]
    assert httpx.post(rollback, json={"version": "one"}, headers=AUTH).status_code == 422
    done = httpx.post(rollback, json={"version": 1}, headers=AUTH)
    assert done.status_code == 200, done.text
    assert done.json() == {"model_version": 1, "previous_version": 4}
    assert versions_seen(server.url) == {1}
    statuses = {v["version"]: v["status"] for v in httpx.get(f"{server.url}/model/versions").json()}
    assert statuses[1] == "active"
    assert statuses[4] == "accepted"
    assert statuses[5] == "rejected"
