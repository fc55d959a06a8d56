"""The Batch page, driven by Streamlit's AppTest against a real serving API (uvicorn):
several files sent in batches, one table row per file, the bad ones with their error."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlstack.settings import PipelineSettings
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.monitoring.servers import scrape
from tests.support.serving import sample_images
from tests.webapp.conftest import APP, digit_png
from tests.webapp.processes import serving_api

pytestmark = pytest.mark.timeout(300)

PREDICT_REQUESTS = 'mlstack_http_requests_total{method="POST",route="/predict",status="200"}'


@pytest.fixture
def api(project: PipelineSettings, tmp_path: Path) -> Iterator[str]:
    with serving_api(project.project_root, tmp_path) as url:
        yield url


def open_batch_page(url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env) -> AppTest:
    monkeypatch.setenv("SERVING_URL", url)
    monkeypatch.setenv("SAMPLES_DIR", str(tmp_path / "no-samples"))
    monkeypatch.setenv("REQUEST_TIMEOUT", "30")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    return at.radio(key="page").set_value("Batch").run()


def upload(at: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    at.file_uploader(key="batch_upload").set_value(
        [(name, data, "image/png") for name, data in files]
    )
    return at.run()


def blank_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (32, 32), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def single(url: str, data: bytes) -> int:
    body = {"image": base64.b64encode(data).decode()}
    return httpx.post(f"{url}/predict", json=body, timeout=30).json()["prediction"]


def test_a_folder_is_sent_in_batches_and_answered_file_by_file(
    api: str, project: PipelineSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Two images a request, and a 1 MB limit: five files to send make three requests.
    at = open_batch_page(api, monkeypatch, tmp_path, BATCH_IMAGES="2", MAX_UPLOAD_MB="1")
    assert at.title[0].value == "Several images at once"
    assert at.button(key="batch_button").disabled
    samples = sample_images(project)[:3]
    files = [
        ("a.png", samples[0][1]),
        ("not-an-image.png", b"just some text, no pixels"),
        ("b.png", samples[1][1]),
        ("huge.png", b"\x89PNG" + bytes(1024 * 1024)),
        ("blank.png", blank_png()),
        ("drawn.png", digit_png(64)),
        ("c.png", samples[2][1]),
    ]
    upload(at, files)
    before = scrape(f"{api}/metrics")
    at.button(key="batch_button").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    after = scrape(f"{api}/metrics")
    assert after[PREDICT_REQUESTS] - before.get(PREDICT_REQUESTS, 0) == 3

    assert [w.value for w in at.warning] == ["4 of 7 images predicted; 3 refused."]
    table = at.table[0].value
    assert list(table.columns) == ["file", "prediction", "confidence", "error"]
    assert table["file"].tolist() == [name for name, _ in files]
    rows = table.set_index("file")
    for name in ("a.png", "b.png", "drawn.png", "c.png"):
        data = dict(files)[name]
        assert rows.loc[name, "prediction"] == str(single(api, data)), name
        assert 0.1 < rows.loc[name, "confidence"] <= 1
        assert rows.loc[name, "error"] == ""
    assert "not a readable image" in rows.loc["not-an-image.png", "error"]
    assert "no strokes" in rows.loc["blank.png", "error"]
    assert "larger than" in rows.loc["huge.png", "error"]  # never sent
    for name in ("not-an-image.png", "blank.png", "huge.png"):
        assert rows.loc[name, "prediction"] == ""

    # Other files: the old table goes, the page asks for a new prediction.
    upload(at, files[:2])
    assert not at.table
    assert any("The images changed" in i.value for i in at.info)


def test_the_api_down_is_each_files_error(
    dead_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    at = open_batch_page(dead_url, monkeypatch, tmp_path)
    upload(at, [("one.png", digit_png()), ("two.png", digit_png(80))])
    at.button(key="batch_button").click().run()
    assert not at.exception
    table = at.table[0].value
    assert table["prediction"].tolist() == ["", ""]
    assert all("unreachable" in error for error in table["error"])
    assert [w.value for w in at.warning] == ["0 of 2 images predicted; 2 refused."]
