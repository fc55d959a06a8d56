"""The whole stack in a real Docker engine, started with the README's `make up`, driven
as a user drives it.

The test copies the checkout (tracked and new files, no data, no models) to a temporary
folder and runs `make up` there: the root compose.yml, `docker compose up -d --build
--wait`, with the test-only overrides of tests/docker/compose/ added through
COMPOSE_FILE (builds reach PyPI through the host network, a small RETRAIN_EVERY_K, free
published ports on 127.0.0.1, image names of its own). So the first start is a fresh
clone's: the serving API builds ref_data.csv and the artifacts itself, into
bind-mounted host folders that the test then reads. Last, `make switch` moves it to a
folder of photos. Its containers and network are removed at the end, whatever
happened; its images are left to conftest.py's e2e_images.

It prints the image sizes, the build time and the cold-start times, and writes them to
test-output/docker-e2e.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from mlstack.example_images import SHAPES, write_shapes

from tests.docker.conftest import (
    OVERRIDES,
    REPO_ROOT,
    SERVICES,
    copy_checkout,
    current_version,
    docker,
    e2e_env,
    e2e_image_names,
    feedback_until_retrained,
    free_port,
    no_stack_running,
    predict,
    process_uids,
    remember_images,
    sample,
    say,
    wait_healthy,
    written_file_owners,
)
from tests.support import CHROMIUM_ARGS
from tests.support.browser import retry_script_fetches

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(2400)]

RETRAIN_EVERY_K = 3
CONTAINERS = {"serving": "serving-api", "webapp": "webapp", "reporting": "reporting"}
APP_UID = 1000  # the images' user: what the servers run as in a root-owned checkout


@dataclass
class Stack:
    root: Path  # the throwaway copy of the repository
    compose: list[str]
    env: dict[str, str]
    ports: dict[str, int]
    figures: dict = field(default_factory=dict)

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def compose_run(self, *args: str, timeout: int = 600) -> str:
        done = subprocess.run(
            [*self.compose, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"compose {args}:\n{done.stderr[-3000:]}"
        return done.stdout


def _cold_start_s(container: str) -> float | None:
    """Seconds from the container's start to the end of its first passing healthcheck
    (the probes run every 10 s: an upper bound)."""
    state = json.loads(docker("inspect", "-f", "{{json .State}}", container).stdout)
    started = datetime.fromisoformat(state["StartedAt"])
    passed = [p for p in (state.get("Health") or {}).get("Log") or [] if p["ExitCode"] == 0]
    if not passed:
        return None
    return round((datetime.fromisoformat(passed[0]["End"]) - started).total_seconds(), 1)


@pytest.fixture(scope="module")
def stack(
    e2e_images: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    no_stack_running()
    root = tmp_path_factory.mktemp("stack") / "repo"
    copy_checkout(root)
    ports = {service: free_port() for service in SERVICES}
    env = e2e_env(ports, RETRAIN_EVERY_K)
    # The root compose file, then one override per service (each names one service).
    files = [root / "compose.yml", *(OVERRIDES / f"{s}.yml" for s in SERVICES)]
    env["COMPOSE_FILE"] = os.pathsep.join(str(f) for f in files)
    compose = e2e_images.split()
    stack = Stack(root=root, compose=compose, env=env, ports=ports)
    make = ["make", "--no-print-directory", "-C", str(root), f"COMPOSE={e2e_images}"]
    started = False
    try:
        start = time.monotonic()
        stack.compose_run("build", timeout=1800)
        stack.figures["build_s"] = round(time.monotonic() - start, 1)
        remember_images()

        # `make up` as the README runs it: one command, back once all three are healthy.
        start = time.monotonic()
        up = subprocess.run(
            [*make, "up"], capture_output=True, text=True, env=env, timeout=900, check=False
        )
        assert up.returncode == 0, f"make up failed:\n{up.stdout[-2000:]}{up.stderr[-4000:]}"
        stack.figures["up_to_healthy_s"] = round(time.monotonic() - start, 1)
        for project, container in CONTAINERS.items():
            stack.figures[f"cold_start_{project}_s"] = _cold_start_s(container)
        stack.figures["images_mb"] = {
            image: round(int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout) / 1e6)
            for image in e2e_image_names()
        }
        started = True
        yield stack
    finally:
        if request.session.testsfailed or not started:
            logs = subprocess.run(
                [*compose, "logs", "--tail=200"],
                cwd=root,
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                check=False,
            )
            say(request, "\n--- stack logs (a test or the start failed)\n" + logs.stdout[-8000:])
        down = subprocess.run(
            [*make, "down"], capture_output=True, text=True, env=env, timeout=600, check=False
        )
        stack.figures["make_down_ok"] = down.returncode == 0
        docker("network", "rm", "serving_prod_net")
        say(request, "\nDocker e2e figures: " + json.dumps(stack.figures, indent=1))
        out = REPO_ROOT / "test-output"
        out.mkdir(exist_ok=True)
        (out / "docker-e2e.json").write_text(json.dumps(stack.figures, indent=1) + "\n")
        # The containers wrote as their own user: give the copy back before tmp cleanup.
        subprocess.run(["chown", "-R", f"{os.getuid()}:{os.getgid()}", str(root)], check=False)


def model_info(stack: Stack) -> dict:
    answer = httpx.get(stack.url("serving", "/model"), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[object]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (tools/setup-machine.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def test_one_command_starts_all_three_healthy_in_one_project(stack: Stack) -> None:
    """`make up` is `docker compose up -d --build --wait` on the root compose.yml: the
    three services in one project, on the network serving_prod_net, all healthy."""
    out = stack.compose_run("ps", "--format", "json").strip()
    # One JSON object per line (Compose >= 2.21), or one array (older releases).
    listed = json.loads(out) if out.startswith("[") else [json.loads(x) for x in out.splitlines()]
    assert sorted(c["Service"] for c in listed) == sorted(CONTAINERS.values())
    assert all("(healthy)" in c["Status"] for c in listed), [c["Status"] for c in listed]
    network = json.loads(docker("network", "inspect", "serving_prod_net").stdout)[0]
    attached = sorted(c["Name"] for c in network["Containers"].values())
    assert attached == sorted(CONTAINERS.values())


def test_images_hold_the_installed_projects_and_no_tests_or_benchmarks(stack: Stack) -> None:
    images = e2e_image_names()
    assert len(images) == len(SERVICES), images
    for image in images:
        config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image).stdout)
        assert (config.get("Healthcheck") or {}).get("Test"), f"{image} has no HEALTHCHECK"
        assert not any(v.startswith("PYTHONPATH=") for v in config["Env"]), image
    # Searched in the running containers (a new one would copy the whole image on vfs).
    for project, container in CONTAINERS.items():
        found = docker(
            "exec", container, "sh", "-c",
            "find / -xdev \\( -path /proc -o -path /sys -o -path /data -o -path /artifacts "
            "-o -path /workspace \\) -prune -o "
            "\\( -name benchmarks -o -name tests -o -name 'test_*.py' -o -name '*.pkl' "
            "-o -name ref_data.csv -o -name requirements-dev.txt \\) -print 2>/dev/null "
            "| grep -v -e /site-packages/ -e /dist-packages/ -e /usr/lib/python3 ; "
            "python -m pip show mlstack mlstack-webapp 2>/dev/null | grep -E '^(Name|Location):'",
            timeout=300,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        lines = found.stdout.split("\n")
        stray = [line for line in lines if line.startswith("/")]
        assert not stray, f"{container} holds {stray}"
        installed = " ".join(lines)
        package = "mlstack-webapp" if project == "webapp" else "mlstack"
        assert f"Name: {package}" in installed, f"{container}: {package} not installed: {installed}"
        assert "-packages" in installed, f"{container}: {package} not a regular install"
        other = "mlstack" if project == "webapp" else "mlstack-webapp"
        assert f"Name: {other}\n" not in found.stdout + "\n", f"{container} holds {other}"


LEFT_OUT = """
import importlib.util, pathlib, struct, sysconfig
site = pathlib.Path(sysconfig.get_path("purelib"))
for package in ("numpy", "scipy", "pandas", "sklearn", "pyarrow"):
    for found in sorted((site / package).glob("**/tests"))[:1]:
        print("tests:", found)
for name in ("statsmodels", "cryptography", "faker", "pyarrow", "pydeck"):
    spec = importlib.util.find_spec(name)
    if spec is not None and str(site) in str(spec.origin):
        print("installed:", name)
for source in ("/usr/src/mlstack", "/usr/src/mlstack-webapp"):
    if pathlib.Path(source).exists():
        print("tests:", source, "(a second copy of the project)")
for suffix in (".h", ".hpp", ".c", ".cpp", ".pyx", ".pxd", ".pxi", ".pyi", ".ipynb"):
    for found in sorted(site.rglob("*" + suffix))[:1]:
        print("for a compiler or a reader:", found)
for package in ("numpy", "scipy", "pandas", "sklearn", "sqlalchemy", "plotly", "pyarrow"):
    if (site / package).is_dir():
        sources = [p for p in (site / package).rglob("*.py") if p.with_suffix(".pyc").exists()]
        print("sourceless:", package, len(sources), (site / package / "__init__.pyc").exists())


def sections(path):
    # The section names of a 64-bit little-endian ELF file.
    with open(path, "rb") as elf:
        head = elf.read(64)
        if head[:4] != b"\\x7fELF":
            return set()
        offset = struct.unpack_from("<Q", head, 0x28)[0]
        size, count, names_index = struct.unpack_from("<HHH", head, 0x3A)
        elf.seek(offset)
        table = elf.read(size * count)
        headers = [struct.unpack_from("<IIQQQQ", table, i * size) for i in range(count)]
        elf.seek(headers[names_index][4])
        names = elf.read(headers[names_index][5])
    return {names[h[0] : names.index(b"\\0", h[0])].decode() for h in headers}


for path in site.rglob("*.so*"):
    if path.is_file() and not path.parent.name.endswith(".libs"):
        found = sections(path)
        if ".symtab" in found or any(name.startswith(".debug") for name in found):
            print("unstripped:", path)
"""


def test_images_leave_out_tests_build_tools_and_unused_dependencies(stack: Stack) -> None:
    """docs/docker.md: no package ships its unit tests into an image, the project's
    sources stay in the build stage, and reporting has none of Evidently's dependencies
    that it never imports (the stack's real report and UI run without them); the web app
    keeps pyarrow (Streamlit's tables) and has no pydeck. No headers, Cython files, stubs
    or notebooks; the compiled modules are stripped (not auditwheel's grafted libraries);
    the largest libraries hold bytecode only, and the stack runs on it."""
    for project, container in CONTAINERS.items():
        probe = docker("exec", container, "python", "-c", LEFT_OUT, timeout=300)
        assert probe.returncode == 0, probe.stderr
        found = probe.stdout.splitlines()
        assert not [line for line in found if line.startswith("tests:")], (container, found)
        installed = {line.split()[-1] for line in found if line.startswith("installed:")}
        expected = {"pyarrow"} if project == "webapp" else set()
        assert installed == expected, (container, found)
        stray = [line for line in found if line.startswith(("for a compiler", "unstripped:"))]
        assert not stray, (container, stray)
        sourceless = {
            line.split()[1]: line.split()[2:] for line in found if line.startswith("sourceless:")
        }
        assert {"numpy", "pandas"} <= set(sourceless), (container, found)
        assert all(rest == ["0", "True"] for rest in sourceless.values()), (container, found)


def test_servers_run_as_non_root(stack: Stack) -> None:
    """The copy is root's: the entrypoint gave the mounted folders to the image's user and
    dropped root; the web app starts as that user. No process runs as root."""
    for container in CONTAINERS.values():
        assert process_uids(container) == {APP_UID}, container
    for path in (stack.root / "data" / "ref_data.csv", stack.root / "artifacts" / "current"):
        assert path.lstat().st_uid == APP_UID, path


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
    body = predict(stack.url("serving"), sample(stack.root, 0)[0])
    assert set(body) >= {"prediction", "probabilities", "model_version", "prediction_id"}
    probabilities = body["probabilities"]
    assert sorted(probabilities, key=int) == [str(label) for label in range(10)]
    # Each probability is rounded to 6 decimals: ten of them sum to 1 within 5e-6.
    assert abs(sum(probabilities.values()) - 1) <= 5e-6
    assert str(body["prediction"]) == max(probabilities, key=probabilities.get)
    assert body["model_version"] == current_version(stack.root)
    bad = httpx.post(stack.url("serving", "/predict"), json={"image": "not base64!"}, timeout=30)
    assert 400 <= bad.status_code < 500


def test_k_feedbacks_retrain_and_the_new_model_serves(stack: Stack) -> None:
    assert model_info(stack)["prod_rows"] == 0
    version = feedback_until_retrained(stack.url("serving"), stack.root, RETRAIN_EVERY_K)

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

    png, _ = sample(stack.root, 5)
    expected = predict(stack.url("serving"), png)  # same image, same model: the page shows this
    upload = tmp_path / "digit.png"
    upload.write_bytes(png)
    context = browser.new_context()  # type: ignore[attr-defined]
    retry_script_fetches(context)
    page = context.new_page()
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
        context.close()
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


def test_what_the_services_wrote_into_the_root_owned_copy_is_the_images_users(
    stack: Stack,
) -> None:
    """After a prediction, a retraining and a report: every file and folder the services
    wrote into the checkout (test_stack_per_folder.py checks the same for a checkout
    owned by another user)."""
    owners = written_file_owners(stack.root)
    assert set(owners.values()) == {APP_UID}, owners


def test_a_restart_keeps_production_data_and_the_new_model(stack: Stack) -> None:
    prod = stack.root / "data" / "prod_data.csv"
    rows_before = prod.read_text()
    served_before = predict(stack.url("serving"), sample(stack.root, 3)[0])["model_version"]
    assert served_before > 1, "no retrained model to keep (the retraining test failed?)"

    stack.compose_run("restart", "serving-api")
    stack.figures["restart_to_healthy_s"] = round(wait_healthy("serving-api", 300), 1)

    assert prod.read_text() == rows_before
    assert predict(stack.url("serving"), sample(stack.root, 3)[0])["model_version"] == served_before
    info = model_info(stack)
    assert info["manifest"]["version"] == served_before
    assert info["prod_rows"] == len(rows_before.splitlines()) - 1


def test_make_switch_moves_the_stack_to_a_folder_of_photos(stack: Stack) -> None:
    """The README's switch in Docker: a folder of photos under datasets/, named in the
    root .env, then `make switch`. The digits' feedback rows and reports are archived
    under data/archive/, and the stack comes back healthy serving the new labels."""
    rows_before = (stack.root / "data" / "prod_data.csv").read_text()
    write_shapes(stack.root / "datasets" / "shapes", per_label=20, seed=3)
    (stack.root / ".env").write_text("DATASET_DIR=/datasets/shapes\n")
    make = [
        "make",
        "--no-print-directory",
        "-C",
        str(stack.root),
        f"COMPOSE={' '.join(stack.compose)}",
    ]
    start = time.monotonic()
    switched = subprocess.run(
        [*make, "switch"], capture_output=True, text=True, env=stack.env, timeout=1200, check=False
    )
    assert switched.returncode == 0, (
        f"make switch:\n{switched.stdout[-2000:]}{switched.stderr[-4000:]}"
    )
    stack.figures["switch_s"] = round(time.monotonic() - start, 1)

    (archive,) = (stack.root / "data" / "archive").iterdir()
    assert archive.name.endswith("-digits")
    (archived_rows,) = archive.rglob("prod_data.csv")
    assert archived_rows.read_text() == rows_before
    workspaces = [p for p in archive.rglob("workspace") if p.is_dir() and any(p.iterdir())]
    assert workspaces, "the reporting workspace was not archived"
    prod = stack.root / "data" / "prod_data.csv"
    assert not prod.exists() or len(prod.read_text().splitlines()) <= 1
    samples = sorted((stack.root / "data" / "samples").iterdir())
    assert {path.name.rsplit("_", 1)[0] for path in samples} == set(SHAPES)

    info = model_info(stack)
    assert info["manifest"]["version"] == 1
    square = next(path for path in samples if path.name.startswith("square_"))
    assert predict(stack.url("serving"), square.read_bytes())["prediction"] in SHAPES
    for container in CONTAINERS.values():
        wait_healthy(container, 300)
