"""One lock of versions for everything: requirements.lock.

Each service's requirements.txt and requirements-dev.txt list direct dependencies
(names, the odd bound) and take their versions from the lock through a `-c` line;
the lock holds one exact version per package. So every image and the test
environment install the same numpy, pandas, scikit-learn... as the pickles and the
CSV files they pass between expect.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
DIRECT = {
    "serving": ROOT / "serving" / "requirements.txt",
    "webapp": ROOT / "webapp" / "requirements.txt",
    "reporting": ROOT / "reporting" / "requirements.txt",
    "dev": ROOT / "requirements-dev.txt",
}
# Libraries whose objects or files pass between the services: same version in each.
SHARED = ("numpy", "pandas", "scikit-learn", "scipy", "pillow", "pydantic-settings")


def lines(path: Path) -> list[str]:
    out = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines(LOCK):
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"requirements.lock: not `name==version`: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"requirements.lock pins {name} twice"
        pins[name] = match.group(2)
    return pins


def requirements(path: Path) -> list[Requirement]:
    """The requirement lines of a file, options (-c, -r) left out."""
    return [Requirement(line) for line in lines(path) if not line.startswith("-")]


def options(path: Path, flag: str) -> list[Path]:
    return [
        (path.parent / line.split(None, 1)[1]).resolve()
        for line in lines(path)
        if line.split(None, 1)[0] == flag
    ]


def test_the_lock_has_one_exact_version_per_package() -> None:
    pins = lock()
    assert len(pins) > 50, "requirements.lock looks truncated"
    assert list(pins) == sorted(pins), "requirements.lock is not sorted (tools/lock.sh sorts it)"


@pytest.mark.parametrize("name", DIRECT)
def test_requirements_take_their_versions_from_the_lock(name: str) -> None:
    path = DIRECT[name]
    assert options(path, "-c") == [LOCK], f"{path.name} must be constrained by the lock"
    pins = lock()
    for req in requirements(path):
        assert not any(spec.operator == "==" for spec in req.specifier), (
            f"{path.relative_to(ROOT)}: {req} pins a version: versions live in the lock"
        )
        key = canonicalize_name(req.name)
        assert key in pins, f"{path.relative_to(ROOT)}: {req.name} is not in requirements.lock"
        assert req.specifier.contains(pins[key], prereleases=True), (
            f"{req} does not allow the locked {req.name}=={pins[key]}"
        )


def test_dev_installs_the_three_services_requirements() -> None:
    included = options(DIRECT["dev"], "-r")
    for service in ("serving", "webapp", "reporting"):
        assert DIRECT[service].resolve() in included, f"requirements-dev.txt misses {service}"


def _declared(pyproject: Path, extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    found = project.get("dependencies", [])
    if extra is not None:
        found = project.get("optional-dependencies", {}).get(extra, [])
    return [Requirement(r) for r in found]


@pytest.mark.parametrize(
    ("pyproject", "extras", "service"),
    [
        ("pyproject.toml", (None, "serving"), "serving"),
        ("pyproject.toml", (None, "reporting"), "reporting"),
        ("webapp/pyproject.toml", (None,), "webapp"),
    ],
)
def test_each_image_installs_what_its_package_declares(
    pyproject: str, extras: tuple[str | None, ...], service: str
) -> None:
    """The images install a project with --no-deps after their requirements: those must
    cover what the project declares, at versions it accepts."""
    path = ROOT / pyproject
    if not path.is_file():
        pytest.skip(f"no {pyproject}")
    listed = {canonicalize_name(r.name) for r in requirements(DIRECT[service])}
    pins = lock()
    for extra in extras:
        for req in _declared(path, extra):
            key = canonicalize_name(req.name)
            assert key in listed, (
                f"{pyproject} needs {req.name}, {service}/requirements.txt lacks it"
            )
            assert req.specifier.contains(pins[key], prereleases=True), (
                f"{pyproject}: {req} does not accept the locked {pins[key]}"
            )


def test_shared_libraries_are_direct_requirements_of_each_service_that_uses_them() -> None:
    for service in ("serving", "reporting"):
        listed = {canonicalize_name(r.name) for r in requirements(DIRECT[service])}
        missing = [lib for lib in SHARED if lib not in listed]
        assert not missing, f"{service}/requirements.txt misses {missing}"


def _closure(roots: list[Requirement]) -> dict[str, set[str]]:
    """Every distribution the requirements reach in this environment, with who needs it
    (the environment's own metadata, markers evaluated for Python here)."""
    seen: dict[str, set[str]] = {}
    todo = [(req, "(direct)") for req in roots]
    expanded: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req, parent = todo.pop()
        key = canonicalize_name(req.name)
        seen.setdefault(key, set()).add(parent)
        state = (key, frozenset(req.extras))
        if state in expanded:
            continue
        expanded.add(state)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # reported by the caller
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None:
                todo.append((sub, key))
                continue
            for extra in ("", *req.extras):
                if sub.marker.evaluate({"extra": extra}):
                    todo.append((sub, key))
                    break
    return seen


def test_the_lock_is_complete_and_is_what_the_test_environment_runs() -> None:
    """Every package the direct requirements pull in, however deep, is locked, and the
    environment running these tests has the locked version (make venv installs it)."""
    pins = lock()
    roots = [req for path in DIRECT.values() for req in requirements(path)]
    reached = _closure(roots)
    unlocked = {name: sorted(by) for name, by in reached.items() if name not in pins}
    assert not unlocked, f"needed but not in requirements.lock (run tools/lock.sh): {unlocked}"
    drift = {}
    for name in reached:
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            drift[name] = (pins[name], None)
            continue
        if installed != pins[name]:
            drift[name] = (pins[name], installed)
    assert not drift, f"locked vs installed here (make venv): {drift}"


def test_the_shared_layer_is_part_of_both_images_that_install_it() -> None:
    """requirements-shared.txt is the first dependency layer of the serving and reporting
    images: each of its lines is also in both services' files (which stay complete: the
    second install adds only the rest), at the lock's versions."""
    shared = ROOT / "requirements-shared.txt"
    assert options(shared, "-c") == [LOCK]
    pins = lock()
    for service in ("serving", "reporting"):
        listed = {str(r) for r in requirements(DIRECT[service])}
        for req in requirements(shared):
            assert str(req) in listed, f"{service}/requirements.txt lacks {req}"
            assert canonicalize_name(req.name) in pins
    for service in ("serving", "reporting"):
        text = (ROOT / service / "Dockerfile").read_text()
        assert "-r /app/requirements-shared.txt" in text, f"{service}/Dockerfile"
