"""`make reset`: says what it will put aside, asks, and then moves exactly that."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlstack.settings import PipelineSettings

ROOT = Path(__file__).resolve().parents[2]


def run(project: PipelineSettings, *args: str, answer: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PROJECT_ROOT": str(project.project_root)}
    env.pop("DATA_DIR", None)
    env.pop("ARTIFACTS_DIR", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "reset.py"), *args],
        env=env,
        input=answer,
        capture_output=True,
        text=True,
        check=False,
    )


def test_reset_lists_asks_and_moves_aside(project: PipelineSettings) -> None:
    (project.project_root / "reporting" / "workspace").mkdir(parents=True)
    project.prod_data_path.write_text("PCA_1,target\n")
    refused = run(project, answer="n\n")
    assert refused.returncode == 1
    assert "ref_data.csv" in refused.stdout
    assert "prod_data.csv" in refused.stdout
    assert "workspace" in refused.stdout
    assert project.ref_data_path.exists()  # nothing changed

    done = run(project, "--yes")
    assert done.returncode == 0, done.stderr
    assert not project.ref_data_path.exists()
    assert not project.prod_data_path.exists()
    assert not project.samples_dir.exists()
    assert not any(p for p in project.artifacts_dir.iterdir() if p.suffix != ".lock")
    (archive,) = (project.data_dir / "archive").iterdir()
    assert (archive / "data" / "prod_data.csv").read_text() == "PCA_1,target\n"
    assert (archive / "artifacts" / "versions").is_dir()
    assert run(project, "--yes").stdout.startswith("nothing to reset")
