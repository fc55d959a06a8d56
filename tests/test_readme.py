"""The README says what the code does: its settings table is the one the settings
classes give, its two commands stay at the top, and the files it names exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_settings_table_is_made_from_the_settings_classes() -> None:
    begin = "<!-- settings table: python scripts/settings_table.py -->\n"
    end = "\n<!-- end of settings table -->"
    written = README.split(begin, 1)[1].split(end, 1)[0].strip()
    made = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_table.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert written == made, "README's settings table is stale: python scripts/settings_table.py"


def test_the_two_commands_open_the_readme() -> None:
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in first_block.splitlines()] == [
        ["make", "up"],
        ["make", "test"],
    ]
    assert README.index("```bash") < README.index("\n## ")
    make = (ROOT / "Makefile").read_text()
    for target in ("up", "test", "run", "reset", "setup", "bench", "down", "logs"):
        assert re.search(rf"^{target}:", make, re.MULTILINE), f"make {target} is in the README"


def test_every_path_of_where_things_are_exists() -> None:
    section = README.split("## Where things are", 1)[1].split("\n## ", 1)[0]
    paths = re.findall(r"`((?:scripts|serving|webapp|reporting|tools|tests|benchmarks|k8s|"
                       r"monitoring|\.github)[^`*<]*?)`", section)  # fmt: skip
    assert len(paths) > 15
    for path in paths:
        path = path.split(" ")[0]
        base = "scripts/mlstack/" if "/" not in path and path.endswith(".py") else ""
        assert (ROOT / base / path).exists() or (ROOT / "scripts/mlstack" / path).exists(), path
