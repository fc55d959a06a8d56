"""Print the README's table of settings, made from the settings classes themselves.

    python scripts/settings_table.py

Every field of mlstack.settings (and of the web app's own class) is one environment
variable: its name in capitals. tests/test_readme.py checks that the README holds
exactly this table, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlstack.settings import (
    PipelineSettings,
    ReportingSettings,
    ServingSettings,
    StackSettings,
)
from mlstack_webapp.settings import WebappSettings
from pydantic_settings import BaseSettings

GROUPS: list[tuple[str, type[BaseSettings]]] = [
    ("every service", StackSettings),
    ("data set, training, retraining", PipelineSettings),
    ("serving API", ServingSettings),
    ("reporting", ReportingSettings),
    ("web app", WebappSettings),
]
ROOT_DEFAULTS = {  # defaults computed from the root at start, shown as written
    "project_root": "the checkout (else the working directory)",
    "data_dir": "`ROOT/data`",
    "artifacts_dir": "`ROOT/artifacts`",
    "workspace_dir": "`ROOT/reporting/workspace`",
    "samples_dir": "`ROOT/data/samples`",
}


def _default(name: str, field: object) -> str:
    if name in ROOT_DEFAULTS:
        return ROOT_DEFAULTS[name]
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, list):
        return f"`{json.dumps(value)}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def table() -> str:
    lines = ["| variable | default | what it sets | read by |", "|---|---|---|---|"]
    seen: set[str] = set()
    for group, cls in GROUPS:
        for name, field in cls.model_fields.items():
            if name in seen:
                continue
            seen.add(name)
            what = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{name.upper()}` | {_default(name, field)} | {what} | {group} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
