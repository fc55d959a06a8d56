"""Every image and the training environment use the same versions of the
libraries that pickles and CSV files pass between."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ("numpy", "pandas", "scikit-learn", "scipy", "pillow", "pydantic-settings")
SERVICES = ("serving", "webapp", "reporting")


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(==|>=|<=|~=|<|>)?\s*(\S*)", line)
        if match and not line.startswith("-"):
            found[match.group(1).lower()] = (match.group(3) or "") + match.group(4)
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_every_requirement_is_pinned(service: str) -> None:
    loose = {k: v for k, v in pins(ROOT / service / "requirements.txt").items() if "==" not in v}
    assert not loose, f"{service}/requirements.txt has unpinned packages: {loose}"


def test_shared_libraries_have_one_version_everywhere() -> None:
    per_service = {s: pins(ROOT / s / "requirements.txt") for s in SERVICES}
    for library in SHARED:
        versions = {s: p[library] for s, p in per_service.items() if library in p}
        assert "serving" in versions, f"{library} missing from serving/requirements.txt"
        assert len(set(versions.values())) == 1, f"{library} differs: {versions}"
