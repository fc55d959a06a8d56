"""A real Docker engine for the Docker tests, or a plain reason to skip them; and what
the tests that run the stack share: a throwaway copy of the checkout, the test-only
compose overrides, the images they build (kept as the next run's build cache, or removed:
E2E_KEEP_IMAGES=0)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("serving", "webapp", "reporting")
OVERRIDES = REPO_ROOT / "tests" / "docker" / "compose"
IMAGE_PREFIX = "mlstack-e2e/"  # set by the overrides: only the tests' images carry it
NETWORK = "serving_prod_net"


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@pytest.fixture(scope="session")
def docker_engine(request: pytest.FixtureRequest) -> str:
    """Start (or find) the engine and the python:3.11-slim base; returns the compose command.

    Skips, with the script's own words, when no engine can be had here; a base image that
    cannot be had on an engine that runs is a failure, not a skip.
    """
    engine = subprocess.run(
        ["bash", str(REPO_ROOT / "tools/docker-engine.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if engine.returncode != 0:
        reason = _tail(engine.stderr) or f"tools/docker-engine.sh exited {engine.returncode}"
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\nDocker tests skipped: {reason}")
        pytest.skip(f"no Docker engine: {reason}")
    base = subprocess.run(
        ["bash", str(REPO_ROOT / "tools/base-image.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert base.returncode == 0, f"tools/base-image.sh failed:\n{_tail(base.stderr, 20)}"
    return engine.stdout.strip()


def docker(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def e2e_image_names() -> list[str]:
    listed = docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    return [image for image in listed if image.startswith(IMAGE_PREFIX)]


def say(request: pytest.FixtureRequest, line: str) -> None:
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


@pytest.fixture(scope="session")
def e2e_images(docker_engine: str) -> Iterator[str]:
    """The tests' images are built by the first test that starts a stack and reused (from
    the build cache) by the next. When the session ends, whatever happened, the images
    and build steps it left behind are removed: every image of the session when
    E2E_KEEP_IMAGES=0, otherwise only those a rebuild superseded, so the newest images
    stay as the next run's build cache (a run with unchanged dependencies then rebuilds
    only the project's own layers). `docker rmi` (unlike `compose down --rmi`) also
    deletes the untagged parent images of the classic builder's steps: with vfs each is
    a full copy."""
    started = datetime.now(UTC)
    keep = os.environ.get("E2E_KEEP_IMAGES", "1") != "0"
    remember_images()  # a previous run's images: removed at the end once superseded
    try:
        yield docker_engine
    finally:
        stages = _project_stages(since=started)
        if keep:
            current = {_image_id(image) for image in e2e_image_names()}
            stale = [image for image in sorted(_BUILT_IDS) if image not in current]
            removed = [*stale, *stages]
        else:
            removed = [*e2e_image_names(), *sorted(_BUILT_IDS), *stages]
        for image in removed:
            docker("rmi", image, timeout=600)


def _image_id(image: str) -> str:
    return docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()


def _project_stages(since: datetime) -> list[str]:
    """The untagged images of the Dockerfiles' first stage (labelled
    org.mlstack.stage=project: it installs the project under /image/) built since then:
    removing the images does not remove them."""
    found = []
    listed = docker(
        "images",
        "-q",
        "--no-trunc",
        "--filter",
        "dangling=true",
        "--filter",
        "label=org.mlstack.stage=project",
    ).stdout.split()
    for image in listed:
        created = docker("image", "inspect", "-f", "{{.Created}}", image).stdout.strip()
        if not created:  # removed meanwhile
            continue
        when = datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00")
        if when >= since:
            found.append(image)
    return found


_BUILT_IDS: set[str] = set()


def remember_images() -> None:
    """Note the IDs of the tests' images now: one that a later rebuild untags is still
    removed at the end."""
    for image in e2e_image_names():
        found = _image_id(image)
        if found:
            _BUILT_IDS.add(found)


def no_stack_running() -> None:
    if docker("network", "inspect", NETWORK).returncode == 0:
        pytest.skip(f"a stack already runs on this engine (network {NETWORK}): make down")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_checkout(dest: Path, owner: tuple[int, int] | None = None) -> None:
    """The files a fresh clone would have (tracked and new files, not ignored ones: no
    data, no models), owned by `owner` (uid, gid) when given."""
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
    if owner is not None:
        subprocess.run(["chown", "-R", f"{owner[0]}:{owner[1]}", str(dest)], check=True)


def e2e_env(ports: dict[str, int], retrain_every_k: int) -> dict[str, str]:
    """What the overrides read: free published ports on loopback, a small k."""
    return {
        **os.environ,
        "E2E_SERVING_PORT": str(ports["serving"]),
        "E2E_WEBAPP_PORT": str(ports["webapp"]),
        "E2E_REPORTING_PORT": str(ports["reporting"]),
        "E2E_RETRAIN_EVERY_K": str(retrain_every_k),
    }


def wait_healthy(container: str, limit_s: float) -> float:
    """Seconds until the container's healthcheck passes (bounded)."""
    start = time.monotonic()
    state = ""
    while time.monotonic() - start < limit_s:
        state = docker("inspect", "-f", "{{.State.Health.Status}}", container).stdout.strip()
        if state == "healthy":
            return time.monotonic() - start
        time.sleep(1)
    raise AssertionError(f"{container} not healthy after {limit_s:.0f}s (last state: {state})")


def process_uids(container: str) -> set[int]:
    """The UIDs of every process running in the container (seen from the host), but
    the engine's own healthcheck probe: the engine starts it as the image's user, root
    (the entrypoint needs root to hand over the mounted folders, then drops it), every
    10 s for a moment; a look at the wrong moment would otherwise see it."""
    inspect = docker("inspect", "-f", "{{json .Config.Healthcheck.Test}}", container)
    assert inspect.returncode == 0, inspect.stderr
    test = json.loads(inspect.stdout) or []
    probe = " ".join(test[1:]) if test[:1] == ["CMD"] else None
    top = docker("top", container, "-eo", "pid,uid,args")
    assert top.returncode == 0, top.stderr
    uids = set()
    for line in top.stdout.splitlines()[1:]:
        if line.strip():
            _, uid, args = line.split(None, 2)
            if args != probe:
                uids.add(int(uid))
    return uids


# What the services write into the checkout once the stack has predicted, retrained and
# reported: the folders the entrypoint hands to the checkout's owner (or, for a
# root-owned checkout, to the images' user).
WRITTEN = (
    "data/ref_data.csv",
    "data/prod_data.csv",
    "data/samples",
    "artifacts/current",
    "reporting/workspace",
)


def written_file_owners(root: Path) -> dict[str, int]:
    """The UID owning each of WRITTEN in the checkout copy."""
    return {name: (root / name).lstat().st_uid for name in WRITTEN}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sample(root: Path, index: int) -> tuple[bytes, int]:
    """A held-out image the stack's first start exported (data/samples/<label>_<row>.png),
    the files the web app offers a user to upload, and its true label."""
    files = sorted((root / "data" / "samples").glob("*.png"))
    assert files, "no sample images in data/samples"
    path = files[index % len(files)]
    return path.read_bytes(), int(path.stem.split("_")[0])


def predict(base_url: str, png: bytes) -> dict:
    answer = httpx.post(f"{base_url}/predict", json={"image": b64(png)}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def feedback_until_retrained(base_url: str, root: Path, k: int, offset: int = 1) -> int:
    """Send k feedbacks as the web app does; return the new model version served."""
    before = predict(base_url, sample(root, 3)[0])["model_version"]
    answers = []
    for index in range(offset, offset + k):
        png, label = sample(root, index * 7)
        predicted = predict(base_url, png)
        sent = httpx.post(
            f"{base_url}/feedback",
            json={
                "image": b64(png),
                "prediction": predicted["prediction"],
                "target": label,
                "prediction_id": predicted["prediction_id"],
            },
            timeout=120,
        )
        assert sent.status_code == 200, sent.text
        answers.append(sent.json())
    assert [a["stored"] for a in answers] == [True] * k
    assert not any(a["retrained"] for a in answers[:-1])
    # The k-th answer waits (bounded) for its retraining; poll in case it outlasted that.
    deadline = time.monotonic() + 300
    version = before
    while time.monotonic() < deadline:
        version = predict(base_url, sample(root, 3)[0])["model_version"]
        if version > before:
            return version
        time.sleep(2)
    raise AssertionError(f"no new model version served after {k} feedbacks (still {version})")


def current_version(root: Path) -> int:
    """The artifact version the host folder's `current` link points at."""
    return int(os.readlink(root / "artifacts" / "current").rsplit("/", 1)[-1])


def wait_for_project(base_url: str, limit_s: float = 300) -> list[dict]:
    """The Evidently workspace's projects, once it lists one (bounded)."""
    deadline = time.monotonic() + limit_s
    last = ""
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{base_url}/api/projects", timeout=10)
            if answer.status_code == 200 and answer.json():
                return answer.json()
            last = f"{answer.status_code} {answer.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(2)
    raise AssertionError(f"the reporting UI lists no project after {limit_s:.0f}s: {last}")
