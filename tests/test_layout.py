"""The layout the README promises: one installed package, found by import and never
through path edits; benchmarks outside every image."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH_EDITS = re.compile(r"sys\.path\.(insert|append)|sys\.path\s*[+=]|PYTHONPATH")
CHECKS_ABSENCE = re.compile(r"\bassert\b|\bno PYTHONPATH\b")  # the tests that look for them


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in out if (ROOT / name).is_file()]


def test_nothing_edits_sys_path_or_relies_on_pythonpath() -> None:
    files = tracked("*.py", "*Dockerfile", "*.yml", "*.yaml", "*.sh", "Makefile", ".ci/run")
    assert len(files) > 50
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in files
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if PATH_EDITS.search(line) and not CHECKS_ABSENCE.search(line)
    ]
    assert not offenders, offenders


def test_benchmarks_live_outside_the_service_folders_and_images() -> None:
    assert sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))
    for service in ("serving", "webapp", "reporting"):
        assert not list((ROOT / service).glob("*bench*")), service
    dockerignore = (ROOT / ".dockerignore").read_text()
    dockerfiles = " ".join(
        (ROOT / s / "Dockerfile").read_text() for s in ("serving", "webapp", "reporting")
    )
    assert "benchmarks" not in dockerfiles
    # The build context lets in only what the images need (an allow-list) or leaves
    # benchmarks/ out by name.
    assert (
        "benchmarks" in dockerignore
        or dockerignore.lstrip().startswith("*")
        or "\n*\n" in dockerignore
    )
