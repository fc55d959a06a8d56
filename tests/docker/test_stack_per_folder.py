"""The brief's per-folder commands, on a fresh checkout owned by another user.

    docker compose -f serving/docker-compose.yml up -d --build
    docker compose -f webapp/docker-compose.yml up -d --build
    docker compose -f reporting/docker-compose.yml up -d --build

run one after the other with no wait in between, as the brief has them, on a copy of
the checkout owned by a user other than root and UID 1000 (the images' user), who runs
the commands themself (member of the docker group). They must reach a prediction, a
retraining after k feedbacks and the reporting project (with the API's worker count
taken from the checkout's root .env), with every server process running as the
checkout's owner, and the files the services write into the checkout owned by them.

A root-owned checkout is test_stack.py's: the same services (the root compose.yml
extends the folders' files), the same entrypoint giving the folders to the images'
user, the same written files checked there. Running the per-folder commands on one
too started a second whole stack (2.5 minutes) that proved nothing more.

The images are the ones test_stack.py built (same Dockerfiles, same context: the build
cache serves them); the test-only overrides add the host network for builds, free ports
on loopback and a small RETRAIN_EVERY_K, as in test_stack.py.
"""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.docker.conftest import (
    OVERRIDES,
    SERVICES,
    copy_checkout,
    current_version,
    docker,
    e2e_env,
    feedback_until_retrained,
    free_port,
    no_stack_running,
    predict,
    process_uids,
    remember_images,
    sample,
    say,
    wait_for_project,
    wait_healthy,
    written_file_owners,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

RETRAIN_EVERY_K = 2
APP_UID = 1000
OTHER_UID = 2345  # neither root nor the images' user
CONTAINERS = {"serving": "serving-api", "webapp": "webapp", "reporting": "reporting"}


def _compose_binary() -> str:
    """A Compose CLI another user can run: the standalone binary (the `docker compose`
    plugin is linked under root's home)."""
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which("docker-compose") or shutil.which("docker-compose", path=venv_bin)
    if not found:
        pytest.skip("no standalone docker-compose binary (requirements-dev.txt has it)")
    return found


def test_the_briefs_per_folder_commands_work_on_another_users_checkout(
    e2e_images: str, request: pytest.FixtureRequest
) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root: the checkout copy is given to another user")
    no_stack_running()
    owner = OTHER_UID
    try:
        docker_gid = grp.getgrnam("docker").gr_gid
    except KeyError:
        pytest.skip("no docker group to let another user reach the engine")
    # The owner runs the commands, as a member of the docker group would.
    run_as = ["setpriv", f"--reuid={owner}", f"--regid={owner}", f"--groups={docker_gid}", "--"]
    compose = [_compose_binary()]
    # Not under pytest's own temporary folder: root-only (0700), the owner could not
    # read their own checkout there.
    holder = Path(tempfile.mkdtemp(prefix="mlstack-per-folder-"))
    holder.chmod(0o755)
    root = holder / "repo"
    copy_checkout(root, owner=(owner, owner))
    # A setting in the root .env reaches the container with the per-folder commands too.
    (root / ".env").write_text("SERVING_WORKERS=2\n")
    ports = {service: free_port() for service in SERVICES}
    env = e2e_env(ports, RETRAIN_EVERY_K)
    home = holder / "home"
    home.mkdir()
    os.chown(home, owner, owner)
    env["HOME"] = str(home)
    figures: dict[str, object] = {"owner": owner}
    passed = False

    def brief(project: str, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
        files = ["-f", f"{project}/docker-compose.yml", "-f", str(OVERRIDES / f"{project}.yml")]
        return subprocess.run(
            [*run_as, *compose, *files, *args],
            cwd=root,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    try:
        start = time.monotonic()
        for project in SERVICES:  # serving first: it creates serving_prod_net
            up = brief(project, "up", "-d", "--build")
            assert up.returncode == 0, f"{project} up:\n{up.stderr[-3000:]}"
            remember_images()
        figures["up_s"] = round(time.monotonic() - start, 1)
        for project in SERVICES:
            wait_healthy(CONTAINERS[project], 600)
        figures["healthy_s"] = round(time.monotonic() - start, 1)

        started = docker("logs", CONTAINERS["serving"])
        # uvicorn logs "parent process" only when it runs several workers (SERVING_WORKERS).
        assert "Started parent process" in started.stdout + started.stderr
        api = f"http://127.0.0.1:{ports['serving']}"
        body = predict(api, sample(root, 0)[0])
        assert body["model_version"] == current_version(root)
        version = feedback_until_retrained(api, root, RETRAIN_EVERY_K)
        assert current_version(root) == version
        projects = wait_for_project(f"http://127.0.0.1:{ports['reporting']}")
        assert projects[0].get("name")
        page = httpx.get(f"http://127.0.0.1:{ports['webapp']}/_stcore/health", timeout=10)
        assert page.status_code == 200

        # Who runs the servers, and who owns what they wrote into the checkout.
        for container in ("serving-api", "reporting"):
            assert process_uids(container) == {owner}, container
        assert process_uids("webapp") == {APP_UID}
        owners = written_file_owners(root)
        assert set(owners.values()) == {owner}, owners
        figures["total_s"] = round(time.monotonic() - start, 1)
        passed = True
    finally:
        if not passed:
            for container in CONTAINERS.values():
                logs = docker("logs", "--tail=60", container)
                say(request, f"\n--- {container}\n{(logs.stdout + logs.stderr)[-3000:]}")
        for project in reversed(SERVICES):
            brief(project, "down", "--remove-orphans", timeout=600)
        docker("network", "rm", "serving_prod_net")
        say(request, f"\nper-folder commands: {figures}")
        subprocess.run(["rm", "-rf", str(holder)], check=False)
