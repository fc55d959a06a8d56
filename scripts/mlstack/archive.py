"""What belongs to one data set, and putting it aside: `make reset` and a switch to
another data set (mlstack.pipeline.bootstrap) both move it into one archive folder,
DATA_DIR/archive/<UTC time>-<why>/, under the same names; nothing is deleted.

A data set's identity is what the feedback rows, samples and reports depend on: its
kind, its name (the folder's or the CSV file's) and what its images become before the
PCA. The first training records it in the manifest (`extra["dataset_id"]`, carried to
every retrained version, with the path it was read from); bootstrap compares it with
the settings to see a switch. The path is not compared: the same folder is
/home/me/shapes on the host and /datasets/shapes in a container.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .prod_store import companion_files
from .settings import PipelineSettings, ReportingSettings

log = logging.getLogger(__name__)

DIGITS_SOURCE = "scikit-learn digits"
COMPARED = ("kind", "name", "features")


class DatasetSwitchError(RuntimeError):
    """The settings name another data set and its state cannot be put aside here."""


def dataset_identity(settings: PipelineSettings) -> dict[str, str]:
    """The data set the settings name, without reading it: {kind, name, source,
    features}. Paths are resolved, so `./x` and `/abs/x` are one data set."""
    if settings.dataset_csv is not None:
        csv = Path(settings.dataset_csv).resolve()
        return {
            "kind": "table",
            "name": csv.stem,
            "source": str(csv),
            "features": f"target column {settings.target_column}",
        }
    if settings.dataset_dir is None:
        # The digits keep their 8x8 grid whatever IMAGE_FEATURES says.
        return {"kind": "images", "name": "digits", "source": DIGITS_SOURCE, "features": "grid"}
    folder = Path(settings.dataset_dir).resolve()
    features = (
        f"onnx {Path(settings.image_model).name}"
        if settings.image_model is not None
        else settings.image_features
    )
    return {"kind": "images", "name": folder.name, "source": str(folder), "features": features}


def recorded_identity(extra: dict[str, Any]) -> dict[str, str] | None:
    """The identity a manifest's `extra` records. Artifacts saved before it was recorded
    give their data set's name and kind only (compared alone); None when even those
    are missing (nothing to compare: taken as the same data set)."""
    recorded = extra.get("dataset_id")
    if isinstance(recorded, dict):
        return recorded
    if "dataset" in extra:
        return {"kind": extra.get("kind", "images"), "name": str(extra["dataset"])}
    return None


def is_switch(recorded: dict[str, str] | None, wanted: dict[str, str]) -> bool:
    """True when the artifacts were trained on another data set than `wanted`."""
    if recorded is None:
        return False
    return any(key in recorded and wanted.get(key) != recorded[key] for key in COMPARED)


def describe(identity: dict[str, str]) -> str:
    source = identity.get("source")
    where = f" ({source})" if source and source != DIGITS_SOURCE else ""
    return f"{identity.get('kind', 'images')} data set {identity.get('name', '?')!r}{where}"


def prod_files(pipeline: PipelineSettings) -> list[Path]:
    """prod_data.csv and the files beside it (its row count and lock)."""
    path = pipeline.prod_data_path
    return [path, *companion_files(path)]


def what_goes(pipeline: PipelineSettings, reporting: ReportingSettings) -> list[Path]:
    """Everything the stack built or collected for its data set, that exists: the
    reference and synthetic rows, the feedback rows, the samples, every artifact
    version and the reporting workspace."""
    artifacts = pipeline.artifacts_dir
    # Not the lock files: a bootstrap holds one while it archives.
    versions = [
        p for p in (artifacts.iterdir() if artifacts.is_dir() else []) if p.suffix != ".lock"
    ]
    candidates = [
        pipeline.ref_data_path,
        pipeline.synthetic_data_path,
        *prod_files(pipeline),
        pipeline.samples_dir,
        *sorted(versions),
        reporting.workspace_dir,
    ]
    return [p for p in candidates if (p.exists() or p.is_symlink()) and p.name != ".gitkeep"]


def archive_folder(pipeline: PipelineSettings, why: str) -> Path:
    """DATA_DIR/archive/<UTC time>-<why>/: DATA_DIR is writable wherever the stack
    runs (the containers mount it), the checkout may not be."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in why) or "archive"
    return pipeline.data_dir / "archive" / f"{stamp}-{safe}"


def is_mount_point(path: Path) -> bool:
    """Whether something is mounted at `path`. os.path.ismount compares device numbers,
    which a bind mount from the same file system shares with its parent (a container's
    /workspace, on an engine whose storage is on the host's disk): the process's own
    table of mounts names it."""
    if os.path.ismount(path):
        return True
    try:
        table = Path("/proc/self/mountinfo").read_text()
    except OSError:  # not Linux
        return False
    target = str(path.resolve())
    # The fifth field is the mount point, with spaces and the like as octal escapes.
    rows = (line.split() for line in table.splitlines())
    points = (fields[4] for fields in rows if len(fields) > 4)
    return any(point.encode().decode("unicode_escape") == target for point in points)


def move_aside(paths: list[Path], archive: Path, root: Path) -> list[tuple[Path, Path]]:
    """Move each path into `archive` under its name relative to `root`, or under its
    folder's name and its own when it lies elsewhere (in a container /data/prod_data.csv
    becomes data/prod_data.csv); returns (from, to) pairs."""
    moved = []
    for path in paths:
        try:
            where = archive / path.relative_to(root)
        except ValueError:
            where = archive / path.parent.name / path.name
        where.parent.mkdir(parents=True, exist_ok=True)
        if is_mount_point(path):  # a container's /workspace: the folder stays, not its content
            where.mkdir(exist_ok=True)
            for child in sorted(path.iterdir()):
                shutil.move(child, where / child.name)
        else:
            shutil.move(path, where)
        moved.append((path, where))
    return moved


def delete(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def archive_for_switch(
    pipeline: PipelineSettings, old: dict[str, str], reporting: ReportingSettings | None = None
) -> Path | None:
    """Before training on another data set: move what belonged to `old` aside (the
    artifact versions too, so no rollback can bring back a model of the old data set)
    and log each move. Returns the archive folder, None when there was nothing."""
    reporting = reporting or ReportingSettings(project_root=pipeline.project_root)
    paths = what_goes(pipeline, reporting)
    if not paths:
        return None
    archive = archive_folder(pipeline, old.get("name", "data set"))
    for source, target in move_aside(paths, archive, pipeline.project_root):
        log.info("moved %s -> %s", source, target)
    log.warning("what belonged to the %s is in %s", describe(old), archive)
    return archive
