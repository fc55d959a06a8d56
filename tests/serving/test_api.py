"""The serving API in process (TestClient runs the lifespan): the contract of each
route, and every kind of bad input answered with a 4xx that writes nothing."""

from __future__ import annotations

import io
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlstack.serving import inputs
from mlstack.serving.app import create_app
from mlstack.settings import ServingSettings
from PIL import Image

from tests.support.serving import b64, sample_images


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def prod_bytes(client: TestClient) -> bytes:
    path = client.settings.prod_data_path
    return path.read_bytes() if path.exists() else b""


def test_predict_answers_the_contract_and_gets_the_samples_right(client: TestClient) -> None:
    samples = sample_images(client.settings)
    correct = 0
    ids = set()
    for label, data in samples:
        answer = client.post("/predict", json={"image": b64(data)})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"prediction", "probabilities", "model_version", "prediction_id"}
        assert re.fullmatch("[0-9a-f]{32}", body["prediction_id"]), body["prediction_id"]
        ids.add(body["prediction_id"])
        assert set(body["probabilities"]) == {str(c) for c in range(10)}
        assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-4)
        assert body["prediction"] == int(max(body["probabilities"], key=body["probabilities"].get))
        assert body["model_version"] == 1
        correct += body["prediction"] == label
    assert correct >= 0.95 * len(samples)
    assert len(ids) == len(samples)  # 128 random bits each


def test_feedback_stores_rows_and_the_kth_retrains(client: TestClient) -> None:
    label, data = sample_images(client.settings)[7]
    answers = []
    for _ in range(3):  # RETRAIN_EVERY_K = 3 in this fixture
        answer = client.post(
            "/feedback", json={"image": b64(data), "prediction": label, "target": label}
        )
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    assert [a["rows"] for a in answers] == [1, 2, 3]
    assert [a["retrained"] for a in answers] == [False, False, True]
    assert answers[-1]["model_version"] == 2
    assert client.post("/predict", json={"image": b64(data)}).json()["model_version"] == 2

    lines = client.settings.prod_data_path.read_text().splitlines()
    assert len(lines) == 4  # header + 3
    header = lines[0].split(",")
    assert header[-5:] == ["target", "prediction", "timestamp", "model_version", "prediction_id"]
    assert all(len(line.split(",")) == len(header) for line in lines[1:])

    info = client.get("/model").json()
    assert info["retrain_every_k"] == 3
    assert info["prod_rows"] == 3
    assert info["manifest"]["version"] == 2
    assert [h["version"] for h in info["history"]] == [1, 2]
    rows = info["manifest"]["rows"]
    # The samples are reference hold-out images: stored, judged by, never trained on.
    assert (rows["prod"], rows["prod_holdout"], rows["prod_seen"]) == (0, 3, 3)


def test_feedback_keeps_the_prediction_id(client: TestClient) -> None:
    label, data = sample_images(client.settings)[0]
    predicted = client.post("/predict", json={"image": b64(data)}).json()
    body = {"image": b64(data), "prediction": predicted["prediction"], "target": label}
    body["prediction_id"] = predicted["prediction_id"]
    assert client.post("/feedback", json=body).status_code == 200
    assert (
        client.settings.prod_data_path.read_text()
        .splitlines()[1]
        .endswith(predicted["prediction_id"])
    )


def test_labels_sent_as_strings_are_the_data_sets_labels(client: TestClient) -> None:
    _, data = sample_images(client.settings)[0]
    answer = client.post("/feedback", json={"image": b64(data), "prediction": "0", "target": "0"})
    assert answer.status_code == 200, answer.text
    row = client.settings.prod_data_path.read_text().splitlines()[1].split(",")
    assert row[-5:-3] == ["0", "0"]


def bomb() -> bytes:
    """A 1-bit PNG of 7,000 x 7,000 pixels: a few KB on the wire, 49 megapixels decoded."""
    return png(Image.new("1", (7000, 7000)))


def truncated_png() -> bytes:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    data = png(Image.fromarray(noise))
    return data[: len(data) // 2]


BAD_BODIES = {
    "not base64": ({"image": "this is not base64!"}, 400, "base64"),
    "empty image": ({"image": ""}, 422, "image"),
    "not an image": ({"image": b64(b"just some text, no pixels")}, 422, "not a readable image"),
    "truncated image": ({"image": b64(truncated_png())}, 422, "truncated"),
    "decompression bomb": ({"image": b64(bomb())}, 422, "pixels"),
    "blank image": ({"image": b64(png(Image.new("L", (64, 64), 255)))}, 422, "no strokes"),
    "missing image": ({}, 422, "image"),
    "image not a string": ({"image": 12}, 422, "image"),
    "unknown field": ({"image": "aGk=", "extra": 1}, 422, "extra"),
}


@pytest.mark.parametrize("case", BAD_BODIES)
def test_bad_predict_input_is_a_clear_4xx(client: TestClient, case: str) -> None:
    body, status, words = BAD_BODIES[case]
    answer = client.post("/predict", json=body)
    assert answer.status_code == status, answer.text
    assert words in str(answer.json()["detail"])


def feedback_cases(data: bytes) -> dict[str, tuple[dict, int, str]]:
    good = {"image": b64(data), "prediction": 3, "target": 3}
    return {
        **{
            f"image: {name}": ({**good, **body}, status, words)
            for name, (body, status, words) in BAD_BODIES.items()
            if "image" in body and name != "unknown field"
        },
        "unknown target": ({**good, "target": 12}, 422, "unknown label 12"),
        "unknown prediction": ({**good, "prediction": "cat"}, 422, "unknown label 'cat'"),
        "target true": ({**good, "target": True}, 422, "target"),
        "target float": ({**good, "target": 3.5}, 422, "target"),
        "missing target": ({"image": good["image"], "prediction": 3}, 422, "target"),
        "missing image": ({"prediction": 3, "target": 3}, 422, "image"),
        "path in prediction_id": (
            {**good, "prediction_id": "../../etc/passwd"},
            422,
            "prediction_id",
        ),
    }


def test_bad_feedback_input_is_a_clear_4xx_and_writes_nothing(client: TestClient) -> None:
    _, data = sample_images(client.settings)[3]
    for case, (body, status, words) in feedback_cases(data).items():
        answer = client.post("/feedback", json=body)
        assert answer.status_code == status, f"{case}: {answer.text}"
        assert words in str(answer.json()["detail"]), case
        assert prod_bytes(client) == b"", f"{case} wrote to prod_data.csv"


def test_wrong_content_type_and_malformed_json_are_4xx(client: TestClient) -> None:
    answer = client.post("/predict", content=b"image=abc", headers={"content-type": "text/plain"})
    assert answer.status_code == 422
    answer = client.post(
        "/predict", content=b'{"image": ', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert "JSON" in str(answer.json()["detail"])


def test_a_body_over_the_limit_is_refused_before_it_is_read(client: TestClient) -> None:
    limit = client.settings.max_body_bytes
    answer = client.post(
        "/feedback", content=b"x" * (limit + 1), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert str(limit) in answer.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    answer = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert prod_bytes(client) == b""


def test_an_image_over_the_byte_limit_is_413(project) -> None:
    settings = ServingSettings(project_root=project.project_root, max_upload_bytes=4096)
    noise = np.random.default_rng(0).integers(0, 255, (128, 128), dtype=np.uint8)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/predict", json={"image": b64(png(Image.fromarray(noise)))})
    assert answer.status_code == 413
    assert "4096" in answer.json()["detail"]


def test_the_token_protects_feedback_only(project) -> None:
    settings = ServingSettings(project_root=project.project_root, api_token="s3cret-token")
    label, data = sample_images(settings)[0]
    body = {"image": b64(data), "prediction": label, "target": label}
    with TestClient(create_app(settings)) as client:
        assert client.post("/predict", json={"image": b64(data)}).status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            answer = client.post("/feedback", json=body, headers=headers)
            assert answer.status_code == 401, headers
            assert "Authorization: Bearer" in answer.json()["detail"]
        assert not settings.prod_data_path.exists()
        answer = client.post(
            "/feedback", json=body, headers={"Authorization": "Bearer s3cret-token"}
        )
        assert answer.status_code == 200


def test_large_uploads_decode_a_few_at_a_time(project, monkeypatch) -> None:
    """At the 40-megapixel limit one decode takes about 1 GB: large uploads to /predict
    and /feedback wait for one of LARGE_DECODES_AT_ONCE slots, and all are answered."""
    settings = ServingSettings(
        project_root=project.project_root, large_decodes_at_once=2, inline_predict_pixels=64 * 64
    )
    label, data = sample_images(settings)[0]
    # The sample enlarged to 256x256: over the 64x64 pixels that make an upload large.
    large = png(Image.open(io.BytesIO(data)).resize((256, 256), Image.Resampling.BILINEAR))
    decoding = peak = 0
    count = threading.Lock()
    real_load = inputs.load_image

    def slow_counting_load(image: Image.Image) -> Image.Image:
        nonlocal decoding, peak
        with count:
            decoding += 1
            peak = max(peak, decoding)
        time.sleep(0.2)  # long enough for the other requests to arrive meanwhile
        try:
            return real_load(image)
        finally:
            with count:
                decoding -= 1

    monkeypatch.setattr(inputs, "load_image", slow_counting_load)
    feedback = {"image": b64(large), "prediction": label, "target": label}
    with TestClient(create_app(settings)) as client, ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda i: (
                    client.post("/predict", json={"image": b64(large)})
                    if i % 2
                    else client.post("/feedback", json=feedback)
                ),
                range(8),
            )
        )
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    assert peak == 2
    assert settings.prod_data_path.read_bytes().count(b"\n") == 1 + 4  # header + 4 rows


def test_health_docs_and_openapi_examples(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "model_version": 1}
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    example = schema["components"]["schemas"]["PredictRequest"]["examples"][0]
    # The documented example is a real image that the model reads as a 3.
    assert client.post("/predict", json=example).json()["prediction"] == 3
