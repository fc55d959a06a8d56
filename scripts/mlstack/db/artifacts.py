"""The artifact store on PostgreSQL: the same interface as mlstack.artifacts.ArtifactStore.

A version is one row of model_versions: its manifest (JSON), the three pickles (bytea,
each checked against the sha256 in the manifest before it is unpickled), the gate's
decision (`rejected`) and a pin. The version in use is the one row of model_current,
changed by one UPDATE in the transaction that writes the version, so a reader sees the
old complete set or the new one. Writers lock that row first: saves, rollbacks and
prunes happen one at a time cluster-wide, and a retraining trained from a version no
longer in use is refused (SupersededError) as with files.

current_version() is asked on every request: it is one indexed SELECT, remembered for
CURRENT_TTL seconds, so every replica swaps in a new version within about half a
second. While the database is away it answers the last version it read, and the
replica keeps serving the model it has in memory.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..artifacts import (
    PICKLES,
    ArtifactError,
    ArtifactSet,
    Manifest,
    SupersededError,
    new_manifest,
    pickle_set,
    unpickle_set,
)
from ..embedding import Embedding
from ..errors import DatabaseUnavailableError
from ..training import Classifier
from . import reachable

CURRENT_TTL = 0.5
RETRY_AFTER_FAILURE = 1.0
COLUMNS = {"embedding.pkl": "embedding", "scaler.pkl": "scaler", "model.pkl": "model"}


class PostgresArtifactStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.root = engine.url.render_as_string(hide_password=True)  # for messages
        self._current: int | None = None
        self._checked = -1e9
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresArtifactStore({self.root})"

    # -- reading ---------------------------------------------------------------------
    def _fetch_current(self) -> int | None:
        with reachable("reading the current version"), self.engine.connect() as conn:
            return conn.scalar(sa.text("SELECT version FROM model_current WHERE id"))

    def current_version(self) -> int | None:
        """The version in use, read at most every CURRENT_TTL seconds; the last one read
        while the database is unreachable (retried every second)."""
        now = time.monotonic()
        if now - self._checked < CURRENT_TTL:
            return self._current
        with self._guard:
            if time.monotonic() - self._checked < CURRENT_TTL:
                return self._current
            try:
                self._current = self._fetch_current()
                self._checked = time.monotonic()
            except DatabaseUnavailableError:
                self._checked = time.monotonic() + RETRY_AFTER_FAILURE - CURRENT_TTL
                if self._current is None:
                    raise
            return self._current

    def _remember(self, version: int | None) -> None:
        with self._guard:
            self._current, self._checked = version, time.monotonic()

    def exists(self) -> bool:
        return self._fetch_current() is not None

    def versions(self) -> list[int]:
        with reachable("listing versions"), self.engine.connect() as conn:
            return list(conn.scalars(sa.text("SELECT version FROM model_versions ORDER BY 1")))

    def manifest(self, version: int | None = None) -> Manifest:
        version = self._fetch_current() if version is None else version
        if version is None:
            raise ArtifactError(f"no artifacts in {self.root}: run scripts/bootstrap.py")
        with reachable("reading a manifest"), self.engine.connect() as conn:
            data = conn.scalar(
                sa.text("SELECT manifest FROM model_versions WHERE version = :v"), {"v": version}
            )
        if data is None:
            raise ArtifactError(f"no version {version} in {self.root}")
        try:
            return Manifest(**(json.loads(data) if isinstance(data, str) else data))
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"unreadable manifest of version {version}: {exc}") from exc

    def history(self) -> list[dict[str, Any]]:
        with reachable("reading the history"), self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT manifest FROM model_versions ORDER BY version")
            ).fetchall()
        out = []
        for (data,) in rows:
            try:
                m = Manifest(**data)
            except TypeError:
                continue
            out.append(m.summary())
        return out

    def load(self, version: int | None = None) -> ArtifactSet:
        """Load one complete set, each pickle only after its sha256 matches."""
        manifest = self.manifest(version)
        with reachable("loading a version"), self.engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT embedding, scaler, model FROM model_versions WHERE version = :v"),
                {"v": manifest.version},
            ).first()
        if row is None:
            raise ArtifactError(f"version {manifest.version} vanished from {self.root}")
        blobs = {name: bytes(getattr(row, column)) for name, column in COLUMNS.items()}
        return unpickle_set(manifest, blobs, lambda name: f"{name} of version {manifest.version}")

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
        """Write a new version and make it current, unless the gate rejected it."""
        blobs = pickle_set(embedding, classifier)
        assert set(blobs) == set(PICKLES)
        with reachable("saving a version"), self.engine.begin() as conn:
            parent = conn.scalar(sa.text("SELECT version FROM model_current WHERE id FOR UPDATE"))
            if base_version is not None and parent is not None and parent != base_version:
                raise SupersededError(
                    f"trained from version {base_version}, but version {parent} is in use: "
                    "not saved"
                )
            version = int(
                conn.scalar(sa.text("SELECT coalesce(max(version), 0) + 1 FROM model_versions"))
            )
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
            conn.execute(
                sa.text(
                    "INSERT INTO model_versions (version, manifest, embedding, scaler, model, "
                    "rejected) VALUES (:v, CAST(:m AS jsonb), :e, :s, :mo, :r)"
                ),
                {
                    "v": version,
                    "m": json.dumps(manifest.to_dict()),
                    "e": blobs["embedding.pkl"],
                    "s": blobs["scaler.pkl"],
                    "mo": blobs["model.pkl"],
                    "r": manifest.rejected,
                },
            )
            if not manifest.rejected:
                self._point_to(conn, version)
        if not manifest.rejected:
            self._remember(version)
        return manifest

    @staticmethod
    def _point_to(conn: sa.Connection, version: int) -> None:
        conn.execute(
            sa.text("UPDATE model_current SET version = :v, changed_at = now() WHERE id"),
            {"v": version},
        )

    def activate(self, version: int) -> Manifest:
        """Make an existing version current (a rollback); verified first, a version the
        gate rejected refused."""
        if version not in self.versions():
            raise ArtifactError(f"no version {version} in {self.root}")
        manifest = self.manifest(version)
        if manifest.rejected:
            raise ArtifactError(
                f"version {version} was rejected by the promotion gate "
                f"({manifest.gate.get('reason')}): it cannot be made current"
            )
        self.load(version)
        with reachable("activating a version"), self.engine.begin() as conn:
            conn.execute(sa.text("SELECT version FROM model_current WHERE id FOR UPDATE"))
            found = conn.scalar(
                sa.text("SELECT count(*) FROM model_versions WHERE version = :v"), {"v": version}
            )
            if not found:
                raise ArtifactError(f"version {version} was pruned meanwhile")
            self._point_to(conn, version)
        self._remember(version)
        return manifest

    # -- pruning -----------------------------------------------------------------------
    def pin(self, version: int, pinned: bool = True) -> None:
        with reachable("pinning a version"), self.engine.begin() as conn:
            changed = conn.execute(
                sa.text("UPDATE model_versions SET pinned = :p WHERE version = :v"),
                {"p": pinned, "v": version},
            ).rowcount
        if not changed:
            raise ArtifactError(f"no version {version} in {self.root}")

    def pinned(self) -> list[int]:
        with reachable("listing pinned versions"), self.engine.connect() as conn:
            return list(
                conn.scalars(sa.text("SELECT version FROM model_versions WHERE pinned ORDER BY 1"))
            )

    def prune(self, keep: int) -> list[int]:
        """Remove the oldest versions beyond the newest `keep`; never the one in use,
        its parent or a pinned one."""
        with reachable("pruning versions"), self.engine.begin() as conn:
            current = conn.scalar(sa.text("SELECT version FROM model_current WHERE id FOR UPDATE"))
            rows = conn.execute(
                sa.text(
                    "SELECT version, pinned, manifest->>'parent_version' AS parent "
                    "FROM model_versions ORDER BY version"
                )
            ).fetchall()
            spared = {r.version for r in rows if r.pinned} | {current}
            for r in rows:
                if r.version == current and r.parent is not None:
                    spared.add(int(r.parent))
            doomed = [
                r.version for r in rows[: max(0, len(rows) - keep)] if r.version not in spared
            ]
            if doomed:
                conn.execute(
                    sa.text("DELETE FROM model_versions WHERE version = ANY(:d)"), {"d": doomed}
                )
        return doomed

    def clean_staging(self) -> int:
        """Nothing half-written to clean: a version is in its table whole or not at all."""
        return 0
