"""batches.json, beside the project in the workspace: which batch is in which snapshot.

{"dashboard": version of the panels, "reference": fingerprint of ref_data.csv,
 "batch_rows": batch size, "batches": {batch key: {"snapshot": id, "fingerprint": of
 its rows, "rows": [start, stop], "complete": bool}}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

STATE_FILE = "batches.json"


def project_folder(workspace_dir: Path, project_id: str) -> Path:
    return Path(workspace_dir) / str(project_id)


def find_project_folder(workspace_dir: Path, name: str) -> Path | None:
    """The folder of the project named `name`, read from the files (no Workspace: opening
    one reads every snapshot)."""
    for metadata in sorted(Path(workspace_dir).glob("*/metadata.json")):
        try:
            if json.loads(metadata.read_text()).get("name") == name:
                return metadata.parent
        except (OSError, ValueError):
            continue
    return None


def load_state(folder: Path) -> dict:
    try:
        return json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def save_state(folder: Path, state: dict) -> None:
    path = folder / STATE_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, path)
