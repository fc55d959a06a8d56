"""The page for a model trained on a table, driven by Streamlit's AppTest against a
real serving API (uvicorn) on a table: a form built from the schema in GET /model,
Predict, the true label, Feedback; the row reaches prod_data.csv."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from mlstack.settings import PipelineSettings
from streamlit.testing.v1 import AppTest

from tests.support.tables import table_env
from tests.webapp.conftest import APP
from tests.webapp.processes import serving_api

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def table_api(table_project: PipelineSettings, tmp_path: Path) -> Iterator[str]:
    with serving_api(table_project.project_root, tmp_path, **table_env(table_project)) as url:
        yield url


def open_page(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, samples: Path | None = None
) -> AppTest:
    monkeypatch.setenv("SERVING_URL", url)
    monkeypatch.setenv("SAMPLES_DIR", str(samples or tmp_path / "no-samples"))
    monkeypatch.setenv("REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("FEEDBACK_TIMEOUT", "120")
    return AppTest.from_file(str(APP), default_timeout=60).run()


def test_a_table_gets_a_form_predict_and_feedback(
    table_api: str,
    table_project: PipelineSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    at = open_page(table_api, monkeypatch, tmp_path)
    assert not at.exception
    assert at.title[0].value == "Wine colour classifier"  # wine_colour.csv
    # One input per column: numbers within the data set's range, categories in a box.
    alcohol = at.number_input(key="feature_alcohol")
    assert (alcohol.min, alcohol.max) == (11.03, 14.83)
    colour = at.selectbox(key="feature_colour")
    assert colour.options == ["red", "rose", "white", "(missing)"]  # nullable in training
    assert at.number_input(key="feature_magnesium").step == 1  # whole numbers
    assert not at.file_uploader  # no image input for a table
    alcohol.set_value(13.2)
    colour.set_value("white")
    at.button(key="predict_button").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    metric = at.metric[0]
    assert metric.label == "Predicted label"
    assert metric.value in {"class_0", "class_1", "class_2"}

    (true_label,) = [s for s in at.selectbox if s.label == "True label"]
    assert true_label.options == ["class_0", "class_1", "class_2"]
    true_label.set_value("class_2")
    at.button(key="feedback_button").click().run()
    assert not at.exception
    assert any("prod_data.csv now holds 1 row" in s.value for s in at.success)
    prod = pd.read_csv(table_project.prod_data_path)
    assert prod["target"].tolist() == ["class_2"]
    assert prod["prediction"].tolist() == [metric.value]


def test_a_changed_row_asks_for_a_new_prediction(
    table_api: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    at = open_page(table_api, monkeypatch, tmp_path)
    at.button(key="predict_button").click().run()
    assert at.metric
    at.number_input(key="feature_hue").set_value(1.2).run()
    assert not at.metric
    assert any("row changed" in i.value for i in at.info)


def test_a_held_out_row_fills_the_form_and_offers_its_label(
    table_api: str,
    table_project: PipelineSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    samples = pd.read_csv(table_project.samples_dir / "samples.csv")
    # A row with a missing value if there is one: the form shows it as missing.
    gaps = samples.index[samples[["ash", "colour"]].isna().any(axis=1)]
    pick = int(gaps[0]) if len(gaps) else len(samples) - 1
    at = open_page(table_api, monkeypatch, tmp_path, table_project.samples_dir)
    at.selectbox(key="held_out_row").set_value(pick).run()
    assert not at.exception
    assert not at.warning, [w.value for w in at.warning]
    sample = samples.iloc[pick]
    assert at.number_input(key="feature_alcohol").value == pytest.approx(sample["alcohol"])
    at.button(key="predict_button").click().run()
    (true_label,) = [s for s in at.selectbox if s.label == "True label"]
    assert true_label.value == sample["target"]  # the row's own label is offered
    at.button(key="feedback_button").click().run()
    assert any("prod_data.csv now holds 1 row" in s.value for s in at.success)
    # The row the page sent is the held-out row itself: the same vector as ref_data.csv.
    n = len([c for c in pd.read_csv(table_project.ref_data_path).columns if c.startswith("PCA_")])
    pca = [f"PCA_{i}" for i in range(1, n + 1)]
    stored = pd.read_csv(table_project.prod_data_path)[pca].to_numpy()[0]
    expected = pd.read_csv(table_project.ref_data_path)[pca].to_numpy()[int(sample["ref_row"])]
    assert stored == pytest.approx(expected, abs=1e-9)
