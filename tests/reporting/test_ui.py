"""The real `evidently ui` over the built workspace: its HTTP API lists the project and
its snapshots, picks up a new snapshot without a restart, and Chromium shows the dashboard."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlstack.reporting.dashboard import panels
from mlstack.reporting.run import run_once

from tests.conftest import REPO_ROOT
from tests.reporting.conftest import Built, append_rows, copy_project, settings_for
from tests.support import CHROMIUM_ARGS, free_port


@pytest.fixture
def ui(built: Built, tmp_path: Path) -> Iterator[tuple[str, Built]]:
    """`evidently ui` on a free loopback port, over a private copy of the built project."""
    pipeline = copy_project(built.pipeline.project_root, tmp_path / "project")
    settings = settings_for(pipeline)
    copy = Built(pipeline, settings, built.prod, built.project_id)
    port = free_port()
    evidently = Path(sys.executable).parent / "evidently"
    log = open(tmp_path / "ui.log", "w")  # noqa: SIM115 (closed in finally)
    command = [str(evidently), "ui", "--workspace", str(copy.workspace)]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "DO_NOT_TRACK": "1"},  # no usage events sent anywhere
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/api/version", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "evidently ui did not answer in 120 s"
            time.sleep(0.5)
        yield url, copy
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def snapshots(url: str, project_id: str) -> list[dict]:
    answer = httpx.get(f"{url}/api/projects/{project_id}/snapshots", timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.slow
def test_the_ui_serves_the_project_and_new_snapshots(ui: tuple[str, Built]) -> None:
    url, built = ui
    projects = httpx.get(f"{url}/api/projects", timeout=30).json()
    (project,) = [p for p in projects if p["name"] == built.settings.report_project_name]
    assert project["id"] == built.project_id

    listed = snapshots(url, project["id"])
    assert sorted(s["metadata"]["last_row"] for s in listed) == ["100", "200", "240"]
    assert all("feedback" in s["tags"] for s in listed)

    # new feedback, a new run: the running UI serves it without a restart
    append_rows(built.pipeline, 70, seed=21, day="2026-03-06")
    summary = run_once(built.settings)
    assert (summary.added, summary.replaced) == (1, 1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = sorted(s["metadata"]["last_row"] for s in snapshots(url, project["id"]))
        if rows == ["100", "200", "300", "310"]:
            break
        time.sleep(0.5)
    assert rows == ["100", "200", "300", "310"]


@pytest.mark.browser
@pytest.mark.slow
def test_chromium_shows_the_dashboard(ui: tuple[str, Built]) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    url, built = ui
    out = REPO_ROOT / "test-output"
    out.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/projects/{built.project_id}", timeout=60_000)
            for panel in panels():
                expect(page.get_by_text(panel.title, exact=True)).to_be_visible(timeout=60_000)
            # the counter sums the rows of every batch: 100 + 100 + 40
            counter = page.locator("div", has=page.get_by_text("Feedback rows received"))
            expect(counter.get_by_text("240", exact=True).first).to_be_visible(timeout=30_000)
            page.wait_for_load_state("networkidle", timeout=30_000)
            page.wait_for_timeout(1500)  # the plots' transitions
            page.screenshot(path=str(out / "reporting-dashboard.png"), full_page=True)
            text = page.inner_text("body")
        finally:
            browser.close()
    assert "Classification quality per batch" in text
    assert "error" not in text.lower()


def panel_series(url: str, project_id: str, title: str) -> dict[str, list]:
    """The UI's own series for the panel `title` of panels(): legend -> values."""
    (panel,) = [p for p in panels() if p.title == title]
    filters = [
        {
            "tags": v.tags,
            "metadata": v.metadata,
            "metric": v.metric,
            "metric_labels": v.metric_labels,
        }
        for v in panel.values
    ]
    answer = httpx.post(
        f"{url}/api/v2/snapshots/{project_id}/data_series_batch",
        json={"series_filter": filters},
        timeout=30,
    )
    assert answer.status_code in (200, 201), answer.text
    return {panel.values[s["filter_index"]].legend: s["values"] for s in answer.json()["series"]}


@pytest.mark.slow
def test_the_ui_plots_contested_rows_and_gate_decisions(ui: tuple[str, Built]) -> None:
    from mlstack.retraining import retrain

    url, built = ui
    accepted = retrain(built.pipeline, reason="feedback")
    rejected = retrain(built.pipeline.model_copy(update={"gate_floor": 0.9999}))
    assert rejected.rejected
    assert run_once(built.settings).added == 2
    deadline = time.monotonic() + 60
    while len(snapshots(url, built.project_id)) < 5 and time.monotonic() < deadline:
        time.sleep(0.5)

    decisions = panel_series(url, built.project_id, "Gate decision per retraining")
    assert decisions["accepted"] == [float(accepted.gate["accepted"]), 0.0]
    assert decisions["rejected"] == [float(not accepted.gate["accepted"]), 1.0]
    f1 = panel_series(
        url, built.project_id, "Reference hold-out F1 at each retraining: candidate and champion"
    )
    assert f1["candidate"] == pytest.approx(
        [m.gate["candidate"]["reference"]["f1_macro"] for m in (accepted, rejected)]
    )
    contested = panel_series(url, built.project_id, "Contested and burst rows per batch")
    prod = built.prod
    expected = [
        int((rows["target"] != rows["prediction"]).sum())
        for rows in (prod.iloc[:100], prod.iloc[100:200], prod.iloc[200:])
    ]
    assert contested["contested"] == expected
