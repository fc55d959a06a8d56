"""A photo folder as the data set (DATASET_DIR, IMAGE_FEATURES=photo by default),
served by a real uvicorn as the brief runs it: /predict reads the exported samples
and new pictures of the same kind (a shape of the background's gray level included),
refuses only a truly uniform picture, and /feedback stores each image embedded as
ref_data.csv is, then retrains on the k-th."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pandas as pd
import pytest
from mlstack.example_images import SHAPES, shape_image
from mlstack.prod_store import ProdDataStore
from mlstack.settings import PipelineSettings
from PIL import Image

from tests.support.serving import b64

pytestmark = pytest.mark.timeout(300)


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_photos_predict_and_feedback_through_uvicorn(
    photo_project: PipelineSettings, serve
) -> None:
    settings = photo_project
    server = serve(settings, k=3, DATASET_DIR=str(settings.dataset_dir))
    model = httpx.get(f"{server.url}/model", timeout=30).json()["manifest"]
    assert model["classes"] == sorted(SHAPES)
    assert model["extra"]["image_features"]["kind"] == "photo"

    # New pictures of the kind the folder holds, PNG and JPEG: none refused.
    rng = np.random.default_rng(2024)
    right = 0
    for i in range(30):
        shape = SHAPES[i % 3]
        data = png(shape_image(shape, rng), "JPEG" if i % 2 else "PNG")
        answer = httpx.post(f"{server.url}/predict", json={"image": b64(data)}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body["probabilities"]) == set(SHAPES)
        right += body["prediction"] == shape
    assert right >= 16  # chance is 10 of 30

    # Only a truly uniform picture is refused, with the digits' message.
    before = settings.prod_data_path.read_bytes() if settings.prod_data_path.exists() else b""
    for blank in (Image.new("RGB", (120, 90), (200, 60, 90)), Image.new("L", (50, 50), 128)):
        for route, extra in (
            ("predict", {}),
            ("feedback", {"prediction": "circle", "target": "circle"}),
        ):
            answer = httpx.post(
                f"{server.url}/{route}", json={"image": b64(png(blank)), **extra}, timeout=30
            )
            assert answer.status_code == 422, answer.text
            assert "no strokes found (a blank or uniform image)" in answer.text
    # The same in a batch: the shape answered, the uniform picture refused, in order.
    batch = [png(shape_image("square", rng)), png(Image.new("RGB", (80, 80), (10, 200, 90)))]
    answer = httpx.post(
        f"{server.url}/predict", json={"images": [b64(data) for data in batch]}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert [item["status"] for item in answer.json()["predictions"]] == [200, 422]
    after = settings.prod_data_path.read_bytes() if settings.prod_data_path.exists() else b""
    assert after == before

    # Feedback with exported samples: each row is the sample's ref_data.csv vector.
    samples = sorted(settings.samples_dir.glob("*.png"))[:3]
    answers = []
    for path in samples:
        label = path.stem.rsplit("_", 1)[0]
        answer = httpx.post(
            f"{server.url}/feedback",
            json={"image": b64(path.read_bytes()), "prediction": label, "target": label},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    assert [a["retrained"] for a in answers] == [False, False, True]
    assert answers[-1]["candidate_version"] == 2
    n = model["n_components"]
    prod = ProdDataStore(settings.prod_data_path, n).read()
    pca = [f"PCA_{i}" for i in range(1, n + 1)]
    ref = pd.read_csv(settings.ref_data_path)
    rows = [int(path.stem.rsplit("_", 1)[1]) for path in samples]
    np.testing.assert_allclose(prod[pca].to_numpy(float), ref.loc[rows, pca].to_numpy(), atol=1e-9)
    assert prod["target"].tolist() == [p.stem.rsplit("_", 1)[0] for p in samples]
    assert "Traceback" not in server.log()
