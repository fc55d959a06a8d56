"""A table as the data set (DATASET_CSV), served by a real uvicorn as the brief runs
it: one row as {"features": {...}} to /predict and /feedback, checked against the
training schema, stored embedded like ref_data.csv, retrained every k rows."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlstack.prod_store import ProdDataStore
from mlstack.settings import PipelineSettings

from tests.support.tables import as_features, table_env, table_samples

pytestmark = pytest.mark.timeout(300)


def prod_bytes(settings: PipelineSettings) -> bytes:
    path = settings.prod_data_path
    return path.read_bytes() if path.exists() else b""


def schema_of(url: str) -> dict:
    return httpx.get(f"{url}/model", timeout=30).json()["manifest"]["extra"]["schema"]


def test_predict_and_feedback_embed_rows_as_ref_data_and_the_kth_retrains(
    table_project: PipelineSettings, serve
) -> None:
    settings = table_project
    server = serve(settings, k=3, **table_env(settings))
    samples = table_samples(settings)
    model = httpx.get(f"{server.url}/model", timeout=30).json()["manifest"]
    assert model["extra"]["kind"] == "table"
    assert model["classes"] == ["class_0", "class_1", "class_2"]  # text labels
    correct = 0
    for _, row in samples.iterrows():
        answer = httpx.post(
            f"{server.url}/predict", json={"features": as_features(row, settings)}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"prediction", "probabilities", "model_version", "prediction_id"}
        assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-4)
        correct += body["prediction"] == row["target"]
    assert correct >= 0.85 * len(samples)

    answers = []
    for _, row in samples.head(3).iterrows():
        answer = httpx.post(
            f"{server.url}/feedback",
            json={
                "features": as_features(row, settings),
                "prediction": row["target"],
                "target": row["target"],
            },
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    assert [a["rows"] for a in answers] == [1, 2, 3]
    assert [a["retrained"] for a in answers] == [False, False, True]
    assert answers[-1]["candidate_version"] == 2
    assert answers[-1]["promoted"] is True  # the promotion gate passed it
    assert answers[-1]["model_version"] == 2

    # prod_data.csv keeps the brief's layout, and each row is the same vector as the
    # row's line in ref_data.csv: one code path embeds both.
    n = model["n_components"]
    prod = ProdDataStore(settings.prod_data_path, n).read()
    assert list(prod.columns[: n + 2]) == [
        *(f"PCA_{i}" for i in range(1, n + 1)),
        "target",
        "prediction",
    ]
    ref = pd.read_csv(settings.ref_data_path)
    pca = [f"PCA_{i}" for i in range(1, n + 1)]
    expected = ref.loc[samples.head(3)["ref_row"], pca].to_numpy()
    np.testing.assert_allclose(prod[pca].to_numpy(dtype=float), expected, rtol=1e-9, atol=1e-9)
    assert prod["target"].tolist() == samples.head(3)["target"].tolist()


BAD_ROWS = [
    # (what is wrong, change to the example row, the column the answer names)
    ("missing column", lambda r: {k: v for k, v in r.items() if k != "proline"}, "proline"),
    ("extra column", lambda r: {**r, "vintage": 1999}, "vintage"),
    ("text for a number", lambda r: {**r, "alcohol": "13.2"}, "alcohol"),
    ("boolean for a number", lambda r: {**r, "magnesium": True}, "magnesium"),
    ("number for a category", lambda r: {**r, "colour": 3}, "colour"),
    ("null where training had no missing value", lambda r: {**r, "hue": None}, "hue"),
    ("a list", lambda r: {**r, "hue": [1.0]}, "hue"),
]


def test_every_bad_row_is_a_4xx_naming_the_column_and_writes_nothing(
    table_project: PipelineSettings, serve
) -> None:
    settings = table_project
    server = serve(settings, k=1, **table_env(settings))
    example = schema_of(server.url)["example"]
    before = prod_bytes(settings)
    for what, change, column in BAD_ROWS:
        row = change(dict(example))
        for route, extra in (
            ("predict", {}),
            ("feedback", {"prediction": "class_0", "target": "class_0"}),
        ):
            answer = httpx.post(
                f"{server.url}/{route}", json={"features": row, **extra}, timeout=30
            )
            assert 400 <= answer.status_code < 500, (what, route, answer.text)
            assert column in answer.text, (what, route, answer.text)
    # The wrong kind of request, and the wrong labels, are 422s too.
    image = httpx.post(f"{server.url}/predict", json={"image": "iVBORw0KGgo="}, timeout=30)
    assert image.status_code == 422
    assert "features" in image.json()["detail"]
    both = httpx.post(f"{server.url}/predict", json={"features": example, "image": "x"}, timeout=30)
    assert both.status_code == 422
    label = httpx.post(
        f"{server.url}/feedback",
        json={"features": example, "prediction": "class_0", "target": "merlot"},
        timeout=30,
    )
    assert label.status_code == 422
    assert "merlot" in label.text
    assert prod_bytes(settings) == before
    assert "Traceback" not in server.log()


def test_unseen_category_and_nulls_where_training_had_missing_values(
    table_project: PipelineSettings, serve
) -> None:
    settings = table_project
    server = serve(settings, k=100, **table_env(settings))
    example = schema_of(server.url)["example"]
    teal = httpx.post(
        f"{server.url}/predict", json={"features": {**example, "colour": "teal"}}, timeout=30
    )
    assert teal.status_code == 200, teal.text
    assert teal.json()["unknown_categories"] == {"colour": "teal"}
    stored = httpx.post(
        f"{server.url}/feedback",
        json={
            "features": {**example, "colour": "teal"},
            "prediction": "class_0",
            "target": "class_0",
        },
        timeout=30,
    )
    assert stored.status_code == 200
    assert stored.json()["rows"] == 1
    metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert 'mlstack_unknown_categories_total{column="colour"} 2.0' in metrics
    # ash and colour had missing values in training: a null is imputed.
    nulls = httpx.post(
        f"{server.url}/predict",
        json={"features": {**example, "ash": None, "colour": None}},
        timeout=30,
    )
    assert nulls.status_code == 200, nulls.text
    assert "unknown_categories" not in nulls.json()


def test_retraining_and_a_restart_keep_the_schema_and_docs_show_it(
    table_project: PipelineSettings, serve
) -> None:
    settings = table_project
    server = serve(settings, k=1, **table_env(settings))
    first = schema_of(server.url)
    answer = httpx.post(
        f"{server.url}/feedback",
        json={"features": first["example"], "prediction": "class_0", "target": "class_0"},
        timeout=120,
    ).json()
    assert answer["retrained"]
    assert answer["model_version"] == 2
    assert schema_of(server.url) == first
    server.kill()

    again = serve(settings, k=1, **table_env(settings))
    assert httpx.get(f"{again.url}/health", timeout=30).json()["model_version"] == 2
    assert schema_of(again.url) == first
    doc = httpx.get(f"{again.url}/openapi.json", timeout=30).json()
    request = doc["components"]["schemas"]["PredictRequest"]
    assert list(request["properties"]["features"]["properties"]) == [
        c["name"] for c in first["columns"]
    ]
    assert request["properties"]["features"]["properties"]["colour"]["anyOf"]
    assert request["examples"] == [{"features": first["example"]}]
    # The documented example works as it is.
    tried = httpx.post(f"{again.url}/predict", json=request["examples"][0], timeout=30)
    assert tried.status_code == 200, tried.text


def test_an_image_model_refuses_features(client: TestClient) -> None:
    before = prod_bytes(client.settings)
    answer = client.post("/predict", json={"features": {"alcohol": 13.2}})
    assert answer.status_code == 422
    assert "image" in answer.json()["detail"]
    answer = client.post(
        "/feedback", json={"features": {"alcohol": 13.2}, "prediction": 1, "target": 1}
    )
    assert answer.status_code == 422
    assert client.post("/predict", json={}).status_code == 422
    assert prod_bytes(client.settings) == before
