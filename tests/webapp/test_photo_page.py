"""The page's words follow the data set: driven by Streamlit's AppTest against a real
serving API (uvicorn) trained on a folder of photos (tests.support.photos), the page
is the "Shapes classifier", offers no digit canvas, and predicts a held-out sample."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlstack.settings import PipelineSettings
from mlstack_webapp.client import ModelInfo
from mlstack_webapp.views import classifier_title
from streamlit.testing.v1 import AppTest

from tests.webapp.conftest import APP
from tests.webapp.contract_server import ContractServer
from tests.webapp.processes import serving_api

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def photo_api(photo_project: PipelineSettings, tmp_path: Path) -> Iterator[str]:
    env = {"DATASET_DIR": str(photo_project.dataset_dir)}
    with serving_api(photo_project.project_root, tmp_path, **env) as url:
        yield url


def open_page(url: str, samples: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SERVING_URL", url)
    monkeypatch.setenv("SAMPLES_DIR", str(samples))
    monkeypatch.setenv("REQUEST_TIMEOUT", "30")
    return AppTest.from_file(str(APP), default_timeout=60).run()


def test_a_photo_folder_names_the_page_and_has_no_canvas(
    photo_api: str, photo_project: PipelineSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(photo_api, photo_project.samples_dir, monkeypatch)
    assert not at.exception
    assert at.title[0].value == "Shapes classifier"
    source = at.radio(key="source")
    assert source.options == ["Upload an image", "Pick a sample"]
    source.set_value("Upload an image").run()
    assert at.file_uploader(key="upload").label == "A PNG or JPEG image to classify"
    assert not any("digit" in str(m.value).lower() for m in at.markdown)

    at.radio(key="source").set_value("Pick a sample").run()
    square = min(p.name for p in photo_project.samples_dir.glob("square_*"))
    at.selectbox(key="sample").set_value(square).run()
    at.button(key="predict_button").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.metric[0].value in {"circle", "square", "triangle"}

    at.radio(key="page").set_value("Batch").run()
    assert at.file_uploader(key="batch_upload").label == "PNG or JPEG images"


def test_the_digits_keep_their_title_and_canvas(
    contract: ContractServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(contract.url, tmp_path, monkeypatch)
    assert at.title[0].value == "Digit classifier"
    assert "Draw a digit" in at.radio(key="source").options


def test_the_title_is_the_data_sets_name() -> None:
    def title(dataset: str | None, schema: dict | None = None) -> str:
        return classifier_title(ModelInfo(1, [], 10, dataset=dataset, schema=schema))

    assert title("digits") == "Digit classifier"
    assert title(None) == "Digit classifier"  # an API that does not name its data set
    assert title("my_holiday-photos") == "My holiday photos classifier"
    assert title("wine", {"columns": [{"name": "alcohol"}]}) == "Wine classifier"
    assert title(None, {"columns": [{"name": "alcohol"}]}) == "Table classifier"
    assert classifier_title(None) == "Digit classifier"  # the API not reached yet
