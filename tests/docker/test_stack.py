"""The whole stack in a real Docker engine, driven as a user drives it.

The test copies the repository (tracked and new files, no data, no models) to a
temporary folder and runs the README's command there, `tools/stack.sh up`, with the
test-only compose overrides of tests/docker/compose/ (builds reach PyPI through the
host network, a small RETRAIN_EVERY_K, free published ports on 127.0.0.1, image names
of its own). So the first start is a fresh clone's: the serving API builds
ref_data.csv and the artifacts itself, into bind-mounted host folders that the test
then reads. Everything it created (containers, network, images) is removed at the end,
whatever happened.

It prints the image sizes, the build time and the cold-start times (`up` until every
healthcheck passes), and writes them to test-output/docker-e2e.json.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.docker.conftest import REPO_ROOT, SERVICES
from tests.support import CHROMIUM_ARGS

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(2400)]

OVERRIDES = REPO_ROOT / "tests" / "docker" / "compose"
RETRAIN_EVERY_K = 3
IMAGE_PREFIX = "mlstack-e2e/"  # set by the overrides: only the test's images carry it
# Compose service names, as DESIGN.md and the brief's SERVING_URL name them.
SERVING_SERVICE = "serving-api"


@dataclass
class Stack:
    root: Path  # the throwaway copy of the repository
    compose: list[str]
    env: dict[str, str]
    ports: dict[str, int]
    figures: dict = field(default_factory=dict)

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def compose_run(self, project: str, *args: str, timeout: int = 600) -> str:
        files = ["-f", str(self.root / project / "docker-compose.yml")]
        files += ["-f", str(OVERRIDES / f"{project}.yml")]
        done = subprocess.run(
            [*self.compose, *files, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"compose {project} {args}:\n{done.stderr[-3000:]}"
        return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _copy_repository(dest: Path) -> None:
    """The files a fresh clone would have, plus new files not yet committed."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = REPO_ROOT / name
        if not src.is_file():  # deleted in the work tree
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    for folder in ("data", "artifacts"):
        (dest / folder).mkdir(exist_ok=True)


def _docker(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _test_images() -> list[str]:
    listed = _docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    return [image for image in listed if image.startswith(IMAGE_PREFIX)]


def _say(request: pytest.FixtureRequest, line: str) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


def _wait_healthy(container: str, limit_s: float) -> float:
    """Seconds until the container's healthcheck passes (bounded)."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        state = _docker("inspect", "-f", "{{.State.Health.Status}}", container).stdout.strip()
        if state == "healthy":
            return time.monotonic() - start
        time.sleep(1)
    raise AssertionError(f"{container} not healthy after {limit_s:.0f}s")


@pytest.fixture(scope="module")
def stack(
    docker_engine: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    if _docker("network", "inspect", "serving_prod_net").returncode == 0:
        pytest.skip("a stack already runs on this engine (network serving_prod_net): make down")
    root = tmp_path_factory.mktemp("stack") / "repo"
    _copy_repository(root)
    ports = {service: _free_port() for service in SERVICES}
    env = {
        **os.environ,
        "STACK_OVERRIDE_DIR": str(OVERRIDES),
        "E2E_SERVING_PORT": str(ports["serving"]),
        "E2E_WEBAPP_PORT": str(ports["webapp"]),
        "E2E_REPORTING_PORT": str(ports["reporting"]),
        "E2E_RETRAIN_EVERY_K": str(RETRAIN_EVERY_K),
    }
    stack = Stack(root=root, compose=docker_engine.split(), env=env, ports=ports)
    script = ["bash", str(root / "tools" / "stack.sh")]
    started = False
    try:
        start = time.monotonic()
        built = subprocess.run(
            [*script, "build"], capture_output=True, text=True, env=env, timeout=1800, check=False
        )
        assert built.returncode == 0, f"stack.sh build:\n{built.stderr[-4000:]}"
        stack.figures["build_s"] = round(time.monotonic() - start, 1)

        # `up` as the README runs it; its progress lines time each service's cold start.
        start = time.monotonic()
        marks: dict[str, float] = {}
        proc = subprocess.Popen(
            [*script, "up"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
        )
        log: list[str] = []
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            if line.startswith("==> stack: starting "):
                marks[line.split()[-1]] = time.monotonic()
        proc.wait(timeout=900)
        end = time.monotonic()
        assert proc.returncode == 0, "stack.sh up failed:\n" + "".join(log[-60:])
        order = [p for p in SERVICES if p in marks]
        stack.figures["up_to_healthy_s"] = round(end - start, 1)
        for i, project in enumerate(order):
            until = marks[order[i + 1]] if i + 1 < len(order) else end
            stack.figures[f"cold_start_{project}_s"] = round(until - marks[project], 1)
        stack.figures["images_mb"] = {
            image: round(int(_docker("image", "inspect", "-f", "{{.Size}}", image).stdout) / 1e6)
            for image in _test_images()
        }
        started = True
        yield stack
    finally:
        if request.session.testsfailed or not started:
            logs = subprocess.run(
                [*script, "logs"],
                capture_output=True,
                text=True,
                env={**env, "STACK_LOGS_FOLLOW": "0"},
                timeout=120,
                check=False,
            )
            _say(request, "\n--- stack logs (a test or the start failed)\n" + logs.stdout[-8000:])
        subprocess.run(
            [*script, "down", "--volumes"], capture_output=True, env=env, timeout=600, check=False
        )
        # `docker rmi` (unlike `compose down --rmi`) also deletes the untagged parent
        # images of the classic builder's steps: with vfs each is a full copy.
        for image in _test_images():
            _docker("rmi", image, timeout=600)
        _docker("network", "rm", "serving_prod_net")
        _say(request, "\nDocker e2e figures: " + json.dumps(stack.figures, indent=1))
        out = REPO_ROOT / "test-output"
        out.mkdir(exist_ok=True)
        (out / "docker-e2e.json").write_text(json.dumps(stack.figures, indent=1) + "\n")
        # The containers wrote as their own user: give the copy back before tmp cleanup.
        subprocess.run(["chown", "-R", f"{os.getuid()}:{os.getgid()}", str(root)], check=False)


def sample(stack: Stack, index: int) -> tuple[bytes, int]:
    """A held-out image the stack's first start exported (data/samples/<label>_<row>.png),
    the files the web app offers a user to upload, and its true label."""
    files = sorted((stack.root / "data" / "samples").glob("*.png"))
    assert files, "no sample images in data/samples"
    path = files[index % len(files)]
    return path.read_bytes(), int(path.stem.split("_")[0])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def predict(stack: Stack, png: bytes) -> dict:
    answer = httpx.post(stack.url("serving", "/predict"), json={"image": b64(png)}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def model_info(stack: Stack) -> dict:
    answer = httpx.get(stack.url("serving", "/model"), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def current_version(root: Path) -> int:
    """The artifact version the host folder's `current` link points at."""
    return int(os.readlink(root / "artifacts" / "current").rsplit("/", 1)[-1])


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[object]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (tools/test.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            args=CHROMIUM_ARGS,
        )
        try:
            yield launched
        finally:
            launched.close()


def test_images_run_as_non_root_with_a_healthcheck(stack: Stack) -> None:
    images = _test_images()
    assert len(images) == len(SERVICES), images
    for image in images:
        config = json.loads(_docker("image", "inspect", "-f", "{{json .Config}}", image).stdout)
        assert config["User"], f"{image} runs as root"
        assert config["User"].split(":")[0] not in ("root", "0"), image
        assert (config.get("Healthcheck") or {}).get("Test"), f"{image} has no HEALTHCHECK"
        running = _docker("ps", "--filter", f"ancestor={image}", "--format", "{{.Status}}")
        assert "(healthy)" in running.stdout, f"{image}: {running.stdout or 'no container'}"


def test_every_service_answers_on_its_published_port(stack: Stack) -> None:
    docs = httpx.get(stack.url("serving", "/docs"), timeout=10)
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert httpx.get(stack.url("serving", "/health"), timeout=10).status_code == 200
    health = httpx.get(stack.url("webapp", "/_stcore/health"), timeout=10)
    assert health.status_code == 200
    assert health.text.strip() == "ok"
    assert httpx.get(stack.url("reporting", "/api/version"), timeout=10).status_code == 200


def test_first_start_bootstraps_into_the_host_folders(stack: Stack) -> None:
    ref = stack.root / "data" / "ref_data.csv"
    assert ref.is_file(), "the serving API did not write data/ref_data.csv on its first start"
    lines = ref.read_text().splitlines()
    header = lines[0].split(",")
    assert header[0] == "PCA_1"
    assert header[-1] == "target"
    assert len(lines) > 1000  # the digits data set: 1,797 images
    manifest = json.loads((stack.root / "artifacts" / "manifest.json").read_text())
    assert model_info(stack)["manifest"]["version"] == manifest["version"]
    # The sample images the web app offers, exported by the same first start.
    assert any((stack.root / "data" / "samples").iterdir())


def test_predict(stack: Stack) -> None:
    body = predict(stack, sample(stack, 0)[0])
    assert set(body) >= {"prediction", "probabilities", "model_version", "prediction_id"}
    probabilities = body["probabilities"]
    assert sorted(probabilities, key=int) == [str(label) for label in range(10)]
    assert abs(sum(probabilities.values()) - 1) < 1e-6
    assert str(body["prediction"]) == max(probabilities, key=probabilities.get)
    assert body["model_version"] == current_version(stack.root)
    bad = httpx.post(stack.url("serving", "/predict"), json={"image": "not base64!"}, timeout=30)
    assert 400 <= bad.status_code < 500


def test_k_feedbacks_retrain_and_the_new_model_serves(stack: Stack) -> None:
    version_before = current_version(stack.root)
    assert model_info(stack)["prod_rows"] == 0

    answers = []
    for index in range(1, RETRAIN_EVERY_K + 1):
        png, label = sample(stack, index * 7)
        predicted = predict(stack, png)
        feedback = httpx.post(
            stack.url("serving", "/feedback"),
            json={
                "image": b64(png),
                "prediction": predicted["prediction"],
                "target": label,
                "prediction_id": predicted["prediction_id"],
            },
            timeout=120,
        )
        assert feedback.status_code == 200, feedback.text
        answers.append(feedback.json())
    assert [a["stored"] for a in answers] == [True] * RETRAIN_EVERY_K
    assert [a["rows"] for a in answers] == list(range(1, RETRAIN_EVERY_K + 1))
    assert not any(a["retrained"] for a in answers[:-1])

    # The k-th answer waits (bounded) for its retraining; poll in case it outlasted that.
    deadline = time.monotonic() + 300
    version = version_before
    while time.monotonic() < deadline:
        version = predict(stack, sample(stack, 3)[0])["model_version"]
        if version > version_before:
            break
        time.sleep(2)
    assert version > version_before, "no new model version served after k feedbacks"

    # The new artifacts are in the host's folder, and are what the API serves.
    assert current_version(stack.root) == version
    current = stack.root / "artifacts" / "current"
    manifest = json.loads((current / "manifest.json").read_text())
    assert manifest["version"] == version
    assert model_info(stack)["manifest"]["version"] == version
    for name in ("embedding.pkl", "scaler.pkl", "model.pkl"):
        assert (current / name).stat().st_size > 0
    rows = (stack.root / "data" / "prod_data.csv").read_text().splitlines()
    assert len(rows) == 1 + RETRAIN_EVERY_K
    assert rows[0].startswith("PCA_1,")
    stack.figures["retrained_version"] = version


def test_webapp_in_a_browser_shows_the_apis_prediction(
    stack: Stack, browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    png, _ = sample(stack, 5)
    expected = predict(stack, png)  # same image, same model: the page must show this
    upload = tmp_path / "digit.png"
    upload.write_bytes(png)
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.goto(stack.url("webapp"), timeout=60_000)
        uploader = page.get_by_test_id("stFileUploader").locator("input[type=file]")
        uploader.set_input_files(upload, timeout=60_000)
        button = page.get_by_role("button", name="Predict")
        expect(button).to_be_enabled(timeout=60_000)
        button.click()
        metric = page.get_by_test_id("stMetricValue")
        expect(metric).to_have_text(str(expected["prediction"]), timeout=60_000)
        expect(page.get_by_text(f"Model version {expected['model_version']}").first).to_be_visible()
        text = page.get_by_test_id("stMain").inner_text(timeout=10_000)
        (REPO_ROOT / "test-output").mkdir(exist_ok=True)
        page.screenshot(path=str(REPO_ROOT / "test-output" / "docker-webapp.png"))
    finally:
        page.close()
    assert "Traceback" not in text, text[-1000:]


def test_reporting_ui_lists_the_project(stack: Stack, browser: object) -> None:
    from playwright.sync_api import expect

    projects = httpx.get(stack.url("reporting", "/api/projects"), timeout=30)
    assert projects.status_code == 200, projects.text
    names = [project.get("name") for project in projects.json()]
    assert names, "the Evidently workspace has no project"
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.goto(stack.url("reporting"), timeout=60_000)
        expect(page.get_by_text(names[0]).first).to_be_visible(timeout=60_000)
        (REPO_ROOT / "test-output").mkdir(exist_ok=True)
        page.screenshot(path=str(REPO_ROOT / "test-output" / "docker-reporting.png"))
    finally:
        page.close()


def test_a_restart_keeps_production_data_and_the_new_model(stack: Stack) -> None:
    prod = stack.root / "data" / "prod_data.csv"
    rows_before = prod.read_text()
    served_before = predict(stack, sample(stack, 3)[0])["model_version"]
    assert served_before > 1, "no retrained model to keep (the retraining test failed?)"

    container = stack.compose_run("serving", "ps", "-q", SERVING_SERVICE).strip()
    assert container, "no serving-api container"
    stack.compose_run("serving", "restart", SERVING_SERVICE)
    stack.figures["restart_to_healthy_s"] = round(_wait_healthy(container, 300), 1)

    assert prod.read_text() == rows_before
    assert predict(stack, sample(stack, 3)[0])["model_version"] == served_before
    info = model_info(stack)
    assert info["manifest"]["version"] == served_before
    assert info["prod_rows"] == len(rows_before.splitlines()) - 1
