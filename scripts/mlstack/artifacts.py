"""The artifact store: embedding.pkl, scaler.pkl, model.pkl and manifest.json.

Layout (every version is kept, so one can roll back):

    artifacts/
      versions/000003/{embedding,scaler,model}.pkl, manifest.json
      current -> versions/000003           (a symlink, swapped atomically)
      embedding.pkl -> current/embedding.pkl  (and scaler.pkl, model.pkl, manifest.json)

A version folder is written under a temporary name, flushed to disk and renamed
into place; only then is `current` repointed, with one rename. A reader resolves
`current` once and reads that folder, so it never sees a mixed set, and a crash
at any point leaves the previous complete set in use. Each pickle's sha256 is in
the manifest and is checked before the pickle is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from .embedding import Embedding
from .training import Classifier

PICKLES = ("embedding.pkl", "scaler.pkl", "model.pkl")
MANIFEST = "manifest.json"
PINNED = "PINNED"


class ArtifactError(RuntimeError):
    """No usable artifact set: missing, incomplete or tampered with."""


class SupersededError(ArtifactError):
    """A new set trained from a version older than the one in use: never saved."""


@dataclass
class Manifest:
    version: int
    trained_at: str
    rows: dict[str, int]
    metrics: dict[str, Any]
    classes: list
    n_components: int
    classifier: str
    files: dict[str, str]  # file name -> sha256
    parent_version: int | None = None
    reason: str = "initial training"
    extra: dict[str, Any] = field(default_factory=dict)
    # The promotion gate's decision: {"accepted": bool, "reason": ..., figures}; a
    # rejected candidate is kept for inspection and can never be made current.
    gate: dict[str, Any] | None = None

    @property
    def rejected(self) -> bool:
        return bool(self.gate) and not self.gate.get("accepted", True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """What a list of versions shows of each (history, GET /model/versions)."""
        return {
            "version": self.version,
            "trained_at": self.trained_at,
            "reason": self.reason,
            "rows": self.rows,
            "metrics": self.metrics,
            "gate": self.gate,
        }


@dataclass
class ArtifactSet:
    manifest: Manifest
    embedding: Embedding
    classifier: Classifier

    @property
    def version(self) -> int:
        return self.manifest.version


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def pickle_set(embedding: Embedding, classifier: Classifier) -> dict[str, bytes]:
    """The three pickles of an artifact set, as every store writes them."""
    return {
        "embedding.pkl": pickle.dumps(embedding, protocol=pickle.HIGHEST_PROTOCOL),
        "scaler.pkl": pickle.dumps(classifier.scaler, protocol=pickle.HIGHEST_PROTOCOL),
        "model.pkl": pickle.dumps(classifier.model, protocol=pickle.HIGHEST_PROTOCOL),
    }


def unpickle_set(
    manifest: Manifest, blobs: dict[str, bytes], where: Callable[[str], str]
) -> ArtifactSet:
    """The artifact set of a version from its three pickles, as every store reads them:
    each unpickled only once its sha256 matches the manifest's (`where(name)` names a
    pickle in the error)."""
    objects = {}
    for name in PICKLES:
        data = blobs[name]
        if sha256_of(data) != manifest.files.get(name):
            raise ArtifactError(f"{where(name)} does not match the sha256 in its manifest: refused")
        objects[name] = pickle.loads(data)
    classifier = Classifier(objects["scaler.pkl"], objects["model.pkl"])
    return ArtifactSet(manifest, objects["embedding.pkl"], classifier)


def new_manifest(
    version: int,
    parent: int | None,
    blobs: dict[str, bytes],
    embedding: Embedding,
    classifier: Classifier,
    *,
    rows: dict[str, int],
    metrics: dict[str, Any],
    reason: str,
    extra: dict[str, Any] | None,
    gate: dict[str, Any] | None,
) -> Manifest:
    """The manifest of a version about to be written, the sha256 of each of its pickles
    included."""
    return Manifest(
        version=version,
        trained_at=now_utc(),
        rows=rows,
        metrics=metrics,
        classes=classifier.classes,
        n_components=embedding.n_components,
        classifier=repr(classifier.model),
        files={name: sha256_of(data) for name, data in blobs.items()},
        parent_version=parent,
        reason=reason,
        extra=extra or {},
        gate=gate,
    )


def save_copy(store: Any, artifacts: ArtifactSet) -> Manifest:
    """`artifacts` (a loaded version) saved into `store`, file or database, as its next
    version: the same model, figures, reason and details."""
    m = artifacts.manifest
    return store.save(
        artifacts.embedding,
        artifacts.classifier,
        rows=m.rows,
        metrics=m.metrics,
        reason=m.reason,
        extra=m.extra,
    )


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.current_link = self.root / "current"
        self._lock = FileLock(str(self.root / ".write.lock"))

    # -- reading ---------------------------------------------------------------------
    def current_version(self) -> int | None:
        """The version in use, from one readlink: cheap enough to call per request."""
        try:
            # The link's last path part, by a string split: parsing it into a Path cost
            # twice the readlink itself, on every request.
            return int(os.readlink(self.current_link).rpartition("/")[2])
        except (FileNotFoundError, ValueError):
            return None

    def exists(self) -> bool:
        return self.current_version() is not None

    def versions(self) -> list[int]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(int(p.name) for p in self.versions_dir.iterdir() if p.name.isdigit())

    def version_dir(self, version: int) -> Path:
        return self.versions_dir / f"{version:06d}"

    def manifest(self, version: int | None = None) -> Manifest:
        version = self.current_version() if version is None else version
        if version is None:
            raise ArtifactError(f"no artifacts in {self.root}: run scripts/bootstrap.py")
        path = self.version_dir(version) / MANIFEST
        try:
            return Manifest(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ArtifactError(f"unreadable manifest {path}: {exc}") from exc

    def history(self) -> list[dict[str, Any]]:
        out = []
        for version in self.versions():
            try:
                m = self.manifest(version)
            except ArtifactError:
                continue
            out.append(m.summary())
        return out

    def load(self, version: int | None = None) -> ArtifactSet:
        """Load one complete set, each pickle only after its sha256 matches."""
        manifest = self.manifest(version)
        folder = self.version_dir(manifest.version)
        blobs = {}
        for name in PICKLES:
            try:
                blobs[name] = (folder / name).read_bytes()
            except OSError as exc:
                raise ArtifactError(f"missing {name} in {folder}: {exc}") from exc
        return unpickle_set(manifest, blobs, lambda name: str(folder / name))

    # -- writing ---------------------------------------------------------------------
    def save(
        self,
        embedding: Embedding,
        classifier: Classifier,
        *,
        rows: dict[str, int],
        metrics: dict[str, Any],
        reason: str,
        extra: dict[str, Any] | None = None,
        gate: dict[str, Any] | None = None,
        base_version: int | None = None,
    ) -> Manifest:
        """Write a new version and make it current, unless the gate rejected it
        (then it is kept, never current); returns its manifest."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.versions_dir.mkdir(exist_ok=True)
        blobs = pickle_set(embedding, classifier)
        with self._lock:
            parent = self.current_version()
            # `base_version`: the version the set was trained from. A retraining that
            # outlived its server may end after a newer one, or after a rollback: its
            # model, judged against a version no longer in use, is never saved.
            if base_version is not None and parent is not None and parent != base_version:
                raise SupersededError(
                    f"trained from version {base_version}, but version {parent} is in use: "
                    "not saved"
                )
            version = max(self.versions(), default=0) + 1
            manifest = new_manifest(
                version,
                parent,
                blobs,
                embedding,
                classifier,
                rows=rows,
                metrics=metrics,
                reason=reason,
                extra=extra,
                gate=gate,
            )
            staging = self.versions_dir / f".tmp-{uuid.uuid4().hex}"
            staging.mkdir()
            try:
                for name, data in blobs.items():
                    _write_durably(staging / name, data)
                _write_durably(
                    staging / MANIFEST, json.dumps(manifest.to_dict(), indent=2).encode()
                )
                _fsync_dir(staging)
                os.rename(staging, self.version_dir(version))
                _fsync_dir(self.versions_dir)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            if not manifest.rejected:
                self._activate(version)
        return manifest

    def activate(self, version: int) -> Manifest:
        """Make an existing version current (a rollback); it is verified first, and
        a candidate the gate rejected is refused."""
        with self._lock:
            if version not in self.versions():
                raise ArtifactError(f"no version {version} in {self.versions_dir}")
            manifest = self.manifest(version)
            if manifest.rejected:
                raise ArtifactError(
                    f"version {version} was rejected by the promotion gate "
                    f"({manifest.gate.get('reason')}): it cannot be made current"
                )
            self.load(version)
            self._activate(version)
        return manifest

    def _activate(self, version: int) -> None:
        target = Path("versions") / f"{version:06d}"
        tmp = self.root / f".current-{uuid.uuid4().hex}"
        os.symlink(target, tmp)
        os.replace(tmp, self.current_link)  # atomic: readers see the old or the new set
        for name in (*PICKLES, MANIFEST):  # the brief's flat names, resolved through current
            link = self.root / name
            if not link.is_symlink():
                if link.exists():
                    link.unlink()
                os.symlink(Path("current") / name, link)
        _fsync_dir(self.root)

    # -- pruning -----------------------------------------------------------------------
    def pin(self, version: int, pinned: bool = True) -> None:
        """A pinned version is never pruned."""
        marker = self.version_dir(version) / PINNED
        if not self.version_dir(version).is_dir():
            raise ArtifactError(f"no version {version} in {self.versions_dir}")
        if pinned:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def pinned(self) -> list[int]:
        return [v for v in self.versions() if (self.version_dir(v) / PINNED).exists()]

    def prune(self, keep: int) -> list[int]:
        """Remove the oldest versions beyond the newest `keep`; never the one in use,
        the one before it (its parent) or a pinned one. Returns the versions removed."""
        removed = []
        with self._lock:
            current = self.current_version()
            spared = set(self.pinned()) | {current}
            if current is not None:
                spared.add(self.manifest(current).parent_version)
            for version in self.versions()[: max(0, len(self.versions()) - keep)]:
                if version in spared:
                    continue
                # Renamed first, so a reader never finds half a folder under its name.
                doomed = self.versions_dir / f".tmp-prune-{version:06d}"
                os.rename(self.version_dir(version), doomed)
                shutil.rmtree(doomed, ignore_errors=True)
                removed.append(version)
        return removed

    def clean_staging(self) -> int:
        """Remove folders a crash left half-written; returns how many."""
        if not self.root.is_dir():
            return 0
        count = 0
        # Under the write lock: another process's save() in progress holds it, so
        # only what a crashed writer left is removed, never a folder being written.
        with self._lock:
            for pattern in (".tmp-*",):
                for path in self.versions_dir.glob(pattern) if self.versions_dir.is_dir() else []:
                    shutil.rmtree(path, ignore_errors=True)
                    count += 1
            for path in self.root.glob(".current-*"):
                path.unlink(missing_ok=True)
                count += 1
        return count
