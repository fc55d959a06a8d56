"""End to end in a real headless Chromium: the page under `streamlit run`, the real
serving API under uvicorn on a copy of a trained project, and prod_data.csv on disk.

Screenshots of every step go to test-output/webapp/.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from mlstack.retraining import retrain
from mlstack.settings import PipelineSettings
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support import CHROMIUM_ARGS
from tests.support.browser import retry_script_fetches
from tests.webapp.conftest import REPO_ROOT, digit_png
from tests.webapp.contract_server import ContractServer
from tests.webapp.processes import serving_api, webapp

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# Generous: the machine may be busy, and the k-th feedback waits for its retraining.
expect.set_options(timeout=90_000)

SHOTS = REPO_ROOT / "test-output" / "webapp"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def stack(trained_root: Path, tmp_path: Path, k: int) -> Iterator[tuple[Path, str, str]]:
    """(project root, serving URL, web app URL) of a private copy of the trained project."""
    root = tmp_path / "project"
    shutil.copytree(trained_root, root, symlinks=True)
    with (
        serving_api(root, tmp_path, RETRAIN_EVERY_K=str(k)) as api,
        webapp(api, root / "data" / "samples", tmp_path) as app,
    ):
        yield root, api, app


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    retry_script_fetches(context)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


def record(name: str, seconds: float) -> None:
    """Keep a figure (seconds from click to answer on the page) in timings.json."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / "timings.json"
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[name] = round(seconds, 2)
    path.write_text(json.dumps(figures, indent=1, sort_keys=True))


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # let the last rerun paint
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name="Digit classifier")).to_be_visible()
    expect(page.get_by_text("Model version 1")).to_be_visible()  # /model answered
    expect(page).to_have_title("Digit classifier")


def predict(page: Page, figure: str) -> tuple[int, str]:
    """Press Predict; the label and prediction id the page shows."""
    button = page.get_by_role("button", name="Predict")
    expect(button).to_be_enabled()
    started = time.perf_counter()
    button.click()
    metric = page.get_by_test_id("stMetricValue")
    expect(metric).to_be_visible()
    record(figure, time.perf_counter() - started)
    caption = page.get_by_text(re.compile(r"^Prediction id \S+$"))
    expect(caption).to_be_visible()
    return int(metric.inner_text()), caption.inner_text().split()[-1]


def give_true_label(page: Page, label: int) -> None:
    box = page.get_by_role("combobox", name="True label")
    box.click()
    page.get_by_role("option", name=str(label), exact=True).click()
    expect(box).to_have_value(str(label))


def send_feedback(page: Page, figure: str) -> None:
    started = time.perf_counter()
    page.get_by_role("button", name="Send feedback").click()
    expect(page.get_by_text(re.compile(r"prod_data\.csv now holds \d+ rows?"))).to_be_visible()
    record(figure, time.perf_counter() - started)


def prod_rows(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "data" / "prod_data.csv")


def test_upload_a_sample_predict_and_feedback(
    page: Page, trained_root: Path, tmp_path: Path
) -> None:
    with stack(trained_root, tmp_path, k=10) as (root, api, app):
        samples = sorted((root / "data" / "samples").glob("*.png"))
        sample = samples[len(samples) // 2]
        label, ref_row = (int(part) for part in sample.stem.split("_"))
        open_page(page, app)
        shot(page, "upload_1_start")

        page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(sample)
        expect(page.get_by_test_id("stImage")).to_be_visible()
        shot(page, "upload_2_image")

        shown, prediction_id = predict(page, "upload_predict_s")
        shot(page, "upload_3_prediction")
        # The page shows what the API answers for these very bytes.
        direct = requests.post(
            f"{api}/predict",
            json={"image": base64.b64encode(sample.read_bytes()).decode()},
            timeout=30,
        ).json()
        assert shown == direct["prediction"]

        # A change of mind: the label chosen last is the one sent.
        give_true_label(page, (label + 1) % 10)
        give_true_label(page, label)
        shot(page, "upload_4_true_label")
        send_feedback(page, "feedback_s")
        expect(page.get_by_text("prod_data.csv now holds 1 row.")).to_be_visible()
        expect(page.get_by_text("Not retrained this time: model version 1.")).to_be_visible()
        shot(page, "upload_5_feedback")

        rows = prod_rows(root)
        assert len(rows) == 1
        row = rows.iloc[-1]
        assert (row["target"], row["prediction"]) == (label, shown)
        assert row["prediction_id"] == prediction_id
        # The upload went through the same embedding as the reference data: the
        # sample's vector in prod_data.csv is its own row of ref_data.csv.
        ref = pd.read_csv(root / "data" / "ref_data.csv")
        pca = [c for c in ref.columns if c.startswith("PCA_")]
        assert ref.loc[ref_row, "target"] == label
        np.testing.assert_allclose(
            row[pca].to_numpy(float), ref.loc[ref_row, pca].to_numpy(float), atol=1e-9
        )


def draw_seven(page: Page) -> None:
    canvas = page.locator("canvas.upper-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None
    corners = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]  # the bar, then the stem
    x, y = (box["x"] + box["width"] * corners[0][0], box["y"] + box["height"] * corners[0][1])
    page.mouse.move(x, y)
    page.mouse.down()
    for (ax, ay), (bx, by) in itertools.pairwise(corners):
        for step in range(1, 21):
            t = step / 20
            page.mouse.move(
                box["x"] + box["width"] * (ax + (bx - ax) * t),
                box["y"] + box["height"] * (ay + (by - ay) * t),
            )
    page.mouse.up()


def test_draw_a_digit_predict_feedback_and_retrain(
    page: Page, trained_root: Path, tmp_path: Path
) -> None:
    # k=1: this one feedback row retrains the model.
    with stack(trained_root, tmp_path, k=1) as (root, api, app):
        open_page(page, app)
        page.get_by_text("Draw a digit").click()
        draw_seven(page)
        shot(page, "draw_1_drawing")

        shown, prediction_id = predict(page, "drawing_predict_s")
        shot(page, "draw_2_prediction")
        assert shown == 7, "a plain drawn 7 should read as 7"

        give_true_label(page, 7)
        send_feedback(page, "feedback_with_retraining_s")
        expect(page.get_by_text("The model was retrained: now version 2.")).to_be_visible()
        expect(page.get_by_text("Model version 2", exact=True)).to_be_visible()  # sidebar
        shot(page, "draw_3_feedback_retrained")

        rows = prod_rows(root)
        assert len(rows) == 1
        row = rows.iloc[-1]
        assert (row["target"], row["prediction"], row["prediction_id"]) == (7, 7, prediction_id)
        assert requests.get(f"{api}/model", timeout=10).json()["manifest"]["version"] == 2

        # A cleared canvas is no image: Predict waits for a new drawing.
        page.get_by_role("button", name="Clear the drawing").click()
        expect(page.get_by_role("button", name="Predict")).to_be_disabled()


def test_the_model_page_rolls_back_the_served_version(
    page: Page, trained_root: Path, tmp_path: Path
) -> None:
    """Three versions on disk (the first model, an accepted retraining in use, a
    candidate the gate rejected), a real API with a token: the Model page lists them
    and rolls back to version 1 after its confirmation, and the API serves version 1."""
    root = tmp_path / "project"
    shutil.copytree(trained_root, root, symlinks=True)
    assert not retrain(PipelineSettings(project_root=root), reason="browser test").rejected
    strict = PipelineSettings(project_root=root, gate_floor=0.999)
    assert retrain(strict, reason="too strict a floor").rejected
    token = "browser-s3cret"
    with (
        serving_api(root, tmp_path, API_TOKEN=token) as api,
        webapp(api, root / "data" / "samples", tmp_path, API_TOKEN=token) as app,
    ):
        assert requests.get(f"{api}/health", timeout=10).json()["model_version"] == 2
        page.goto(app)
        expect(page.get_by_role("heading", name="Digit classifier")).to_be_visible()
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text("Model version 2")).to_be_visible()
        sidebar.get_by_text("Model", exact=True).click()
        expect(page.get_by_role("heading", name="Model versions")).to_be_visible()
        expect(page.get_by_test_id("stDataFrame")).to_be_visible()
        expect(page.get_by_text("Version 2 is in use.")).to_be_visible()
        expect(
            page.get_by_text(re.compile(r"^Version 3 was rejected by the gate: "))
        ).to_be_visible()
        expect(page.get_by_test_id("stVegaLiteChart")).to_be_visible()
        shot(page, "model_1_versions")

        # Only version 1 is offered (2 is in use, 3 was rejected); confirm, then roll back.
        versions = page.get_by_role("combobox", name="Version to serve")
        expect(versions).to_have_value(re.compile(r"^1 "))
        button = page.get_by_role("button", name="Roll back to version 1")
        expect(button).to_be_disabled()
        page.get_by_text("I understand every worker will serve version 1").click()
        expect(button).to_be_enabled()
        shot(page, "model_2_confirmed")
        button.click()
        expect(page.get_by_text("every worker now serves version 1 (was 2).")).to_be_visible()
        expect(page.get_by_text("Version 1 is in use.")).to_be_visible()
        expect(sidebar.get_by_text("Model version 1")).to_be_visible()
        shot(page, "model_3_rolled_back")

        assert requests.get(f"{api}/health", timeout=10).json()["model_version"] == 1
        statuses = [v["status"] for v in requests.get(f"{api}/model/versions", timeout=10).json()]
        assert statuses == ["active", "accepted", "rejected"]


def test_the_batch_page_answers_a_folder_file_by_file(
    page: Page, trained_root: Path, tmp_path: Path
) -> None:
    """Several files chosen at once in the file dialog (a folder's images), one of them
    not an image: the table lists each file with the real API's answer for it."""
    with stack(trained_root, tmp_path, k=10) as (root, api, app):
        folder = tmp_path / "folder"
        folder.mkdir()
        samples = sorted((root / "data" / "samples").glob("*.png"))[:3]
        for sample in samples:
            shutil.copy(sample, folder / sample.name)
        (folder / "notes.png").write_bytes(b"not an image at all")
        files = sorted(folder.iterdir())
        open_page(page, app)
        page.get_by_test_id("stSidebar").get_by_text("Batch", exact=True).click()
        expect(page.get_by_role("heading", name="Several images at once")).to_be_visible()
        page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(files)
        started = time.perf_counter()
        page.get_by_role("button", name="Predict all").click()
        expect(page.get_by_text("3 of 4 images predicted; 1 refused.")).to_be_visible()
        record("batch_4_files_s", time.perf_counter() - started)
        table = page.get_by_test_id("stTable")
        expect(table).to_be_visible()
        shot(page, "batch_1_table")
        for sample in samples:
            direct = requests.post(
                f"{api}/predict",
                json={"image": base64.b64encode(sample.read_bytes()).decode()},
                timeout=30,
            ).json()
            row = table.get_by_role("row").filter(has_text=sample.name)
            expect(row).to_contain_text(str(direct["prediction"]))
        expect(table.get_by_role("row").filter(has_text="notes.png")).to_contain_text(
            "not a readable image"
        )


@pytest.mark.parametrize("from_webapp", [True, False], ids=["cd webapp", "checkout root"])
def test_the_page_runs_from_either_folder(
    page: Page, contract: ContractServer, tmp_path: Path, from_webapp: bool
) -> None:
    """`cd webapp && streamlit run api.py` (the brief's command) and `streamlit run
    webapp/api.py`: the page finds its package installed, with no path set for it, and
    both read the checkout's samples folder by default."""
    contract.prediction = 4
    image = tmp_path / "digit.png"
    image.write_bytes(digit_png())
    with webapp(contract.url, None, tmp_path, from_webapp=from_webapp) as app:
        open_page(page, app)
        page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(image)
        page.get_by_role("button", name="Predict").click()
        expect(page.get_by_test_id("stMetricValue")).to_have_text("4")
        page.get_by_text("Pick a sample").click()
        samples = REPO_ROOT / "data" / "samples"
        if any(samples.glob("*.png")):
            expect(page.get_by_text("A held-out test image")).to_be_visible()
        else:
            expect(page.get_by_text(f"No sample images in {samples}")).to_be_visible()


def test_a_photo_folder_names_the_tab_and_offers_no_canvas(
    page: Page, photo_project: PipelineSettings, tmp_path: Path
) -> None:
    """A real API trained on a folder of shapes: the browser tab and the heading name
    the folder, and the image sources leave the digit canvas out."""
    root = photo_project.project_root
    with (
        serving_api(root, tmp_path, DATASET_DIR=str(photo_project.dataset_dir)) as api,
        webapp(api, photo_project.samples_dir, tmp_path) as app,
    ):
        page.goto(app)
        expect(page.get_by_role("heading", name="Shapes classifier")).to_be_visible()
        expect(page).to_have_title("Shapes classifier")
        expect(page.get_by_text("Pick a sample")).to_be_visible()
        expect(page.get_by_text("Draw a digit")).to_have_count(0)
        shot(page, "photo-folder")
