"""Several images in one /predict (`images`), through real HTTP to a real uvicorn: each
image answered in order, a bad one with its own error, the good ones as if sent alone;
a batch that is empty or over MAX_BATCH_IMAGES refused whole, with nothing written."""

from __future__ import annotations

import io
from collections import Counter

import httpx
import pytest
from fastapi.testclient import TestClient
from mlstack.settings import PipelineSettings
from PIL import Image

from tests.monitoring.servers import scrape
from tests.support.serving import b64, sample_images

pytestmark = pytest.mark.timeout(300)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_drawing() -> bytes:
    """A dark stroke on white, 280x280: a different path (decode, crop, resize) than
    the data set's 8x8 samples."""
    image = Image.new("L", (280, 280), 255)
    for x in range(120, 160):
        for y in range(40, 240):
            image.putpixel((x, y), 0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


# The bad images of a batch, with the status and words of their own error.
BAD = {
    "not base64": ("this is not base64!", 400, "base64"),
    "not an image": (b64(b"just some text, no pixels"), 422, "not a readable image"),
    "blank": (b64(png(Image.new("L", (64, 64), 255))), 422, "no strokes"),
    "empty": ("", 400, "empty"),
}


def single(url: str, text: str) -> dict:
    answer = httpx.post(f"{url}/predict", json={"image": text}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_mixed_batch_answers_each_image_in_order(project: PipelineSettings, serve) -> None:
    server = serve(project)
    samples = sample_images(project)
    good = [b64(data) for _, data in samples[:6]] + [b64(jpeg_drawing())]
    # Bad images between good ones, at the start and at the end.
    images = [BAD["not base64"][0], *good[:3], BAD["not an image"][0], BAD["blank"][0]]
    images += [*good[3:], BAD["empty"][0]]
    expected_bad = {0: BAD["not base64"], 4: BAD["not an image"], 5: BAD["blank"], 10: BAD["empty"]}
    before = scrape(f"{server.url}/metrics")

    answer = httpx.post(f"{server.url}/predict", json={"images": images}, timeout=30)

    assert answer.status_code == 200, answer.text
    items = answer.json()["predictions"]
    assert len(items) == len(images)
    for index, (_, status, words) in expected_bad.items():
        assert set(items[index]) == {"status", "detail"}, items[index]
        assert items[index]["status"] == status
        assert words in items[index]["detail"]
    answered = [item for i, item in enumerate(items) if i not in expected_bad]
    assert len(answered) == len(good)
    ids = set()
    for text, item in zip(good, answered, strict=True):
        alone = single(server.url, text)
        assert set(item) == {"status", *alone}, item
        assert item["status"] == 200
        assert item["prediction"] == alone["prediction"]
        assert item["model_version"] == alone["model_version"] == 1
        assert item["probabilities"].keys() == alone["probabilities"].keys()
        # Scored in one matrix product rather than one by one: equal to the last
        # rounded digit (probabilities are rounded to 6 decimals).
        for label, value in item["probabilities"].items():
            assert value == pytest.approx(alone["probabilities"][label], abs=2e-6)
        ids.add(item["prediction_id"])
    assert len(ids) == len(good)
    assert [label for label, _ in samples[:6]] == [item["prediction"] for item in answered[:6]]

    # The predictions counter counts images (the batch's and the single ones), the
    # request counter requests.
    after = scrape(f"{server.url}/metrics")
    counted = Counter(str(item["prediction"]) for item in answered)
    for label, count in counted.items():
        key = f'mlstack_predictions_total{{label="{label}"}}'
        assert after.get(key, 0) - before.get(key, 0) == 2 * count  # batch + alone
    requests = 'mlstack_http_requests_total{method="POST",route="/predict",status="200"}'
    assert after[requests] - before.get(requests, 0) == 1 + len(good)


def test_feedback_takes_an_id_from_a_batch(project: PipelineSettings, serve) -> None:
    server = serve(project)
    samples = sample_images(project)[:3]
    images = [b64(data) for _, data in samples]
    items = httpx.post(f"{server.url}/predict", json={"images": images}, timeout=30).json()
    second = items["predictions"][1]
    label = samples[1][0]
    body = {
        "image": images[1],
        "prediction": second["prediction"],
        "target": label,
        "prediction_id": second["prediction_id"],
    }
    answer = httpx.post(f"{server.url}/feedback", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == 1
    row = project.prod_data_path.read_text().splitlines()[1].split(",")
    assert row[-1] == second["prediction_id"]
    assert row[-5:-3] == [str(label), str(second["prediction"])]


def test_empty_and_oversized_batches_are_refused_whole(project: PipelineSettings, serve) -> None:
    server = serve(project, MAX_BATCH_IMAGES="4")
    text = b64(sample_images(project)[0][1])
    cases = {
        "empty": ({"images": []}, "at least 1"),
        "over the maximum": ({"images": [text] * 5}, "over the limit of 4"),
        "with image too": ({"images": [text], "image": text}, "only one of them"),
        "not a list": ({"images": text}, "list"),
        "not strings": ({"images": [text, 7]}, "string"),
    }
    before = scrape(f"{server.url}/metrics")
    for case, (body, words) in cases.items():
        answer = httpx.post(f"{server.url}/predict", json=body, timeout=30)
        assert answer.status_code == 422, f"{case}: {answer.text}"
        assert words in str(answer.json()["detail"]), case
    after = scrape(f"{server.url}/metrics")
    predicted = [k for k in after if k.startswith("mlstack_predictions_total")]
    assert all(after[k] == before.get(k, 0) for k in predicted), "a refused batch was counted"
    # At the maximum it is answered.
    answer = httpx.post(f"{server.url}/predict", json={"images": [text] * 4}, timeout=30)
    assert [item["status"] for item in answer.json()["predictions"]] == [200] * 4


def test_a_table_model_refuses_a_batch_of_images(table_project: PipelineSettings) -> None:
    from mlstack.serving.app import create_app
    from mlstack.settings import ServingSettings

    settings = ServingSettings(
        project_root=table_project.project_root, dataset_csv=table_project.dataset_csv
    )
    with TestClient(create_app(settings)) as client:
        answer = client.post("/predict", json={"images": [b64(jpeg_drawing())]})
    assert answer.status_code == 422
    assert "features" in answer.json()["detail"]


def test_the_documented_batch_example_is_answered(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    examples = schema["components"]["schemas"]["PredictRequest"]["examples"]
    batch = next(example for example in examples if "images" in example)
    items = client.post("/predict", json=batch).json()["predictions"]
    assert [(item["status"], item["prediction"]) for item in items] == [(200, 3)] * len(
        batch["images"]
    )
    responses = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]
    assert "BatchPredictResponse" in str(responses)
