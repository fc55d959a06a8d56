"""Where the state lives, chosen in one place: files (the default) or PostgreSQL.

`DATABASE_URL` unset: prod_data.csv under a file lock (mlstack.prod_store) and the
artifact versions behind artifacts/current (mlstack.artifacts), one machine, as the
brief lays them out. Set: the same interfaces over PostgreSQL (mlstack.db), so that
several replicas with no shared disk see the same feedback rows, the same versions
and one "current" pointer, and retrain one at a time cluster-wide.

Every user of a store opens it here: `open_prod_store`, `open_artifact_store`, and the
locks around bootstrapping and retraining. Nothing here imports SQLAlchemy unless a
database is configured.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from .artifacts import ArtifactStore, save_copy
from .prod_store import ProdDataStore
from .settings import StackSettings

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

# The reference files every node needs and the first training writes: kept in the
# database too, so a replica or a job with an empty DATA_DIR fetches them.
REFERENCE_FILES = ("ref_data.csv", "synthetic_data.csv")


def uses_database(settings: StackSettings) -> bool:
    return bool(getattr(settings, "database_url", None))


def engine(settings: StackSettings) -> Engine:
    """This process's pool for DATABASE_URL (migrations applied on first use)."""
    from .db import get_engine

    if not settings.database_url:
        raise ValueError("DATABASE_URL is not set")
    return get_engine(settings.database_url, settings.db_pool_size, settings.db_connect_timeout)


def open_prod_store(settings: StackSettings, n_components: int) -> Any:
    """The production-data store: append, rows, read(columns), repair."""
    if not uses_database(settings):
        return ProdDataStore(settings.prod_data_path, n_components)
    from .db.prod import PostgresProdStore

    return PostgresProdStore(engine(settings), n_components, settings.prod_data_path)


def open_artifact_store(settings: StackSettings) -> Any:
    """The artifact store: current_version, versions, manifest, history, load, save,
    activate, prune, pin."""
    if not uses_database(settings):
        return ArtifactStore(settings.artifacts_dir)
    from .db.artifacts import PostgresArtifactStore

    return PostgresArtifactStore(engine(settings))


def retrain_lock(settings: StackSettings) -> Any:
    """One retraining at a time: across the workers of one machine (a file lock), or
    across the cluster (a PostgreSQL advisory lock, released by the database if the
    session of a crashed trainer dies)."""
    if not uses_database(settings):
        Path(settings.artifacts_dir).mkdir(parents=True, exist_ok=True)
        return FileLock(str(Path(settings.artifacts_dir) / ".retrain.lock"))
    from .db import LOCK_RETRAIN, AdvisoryLock

    return AdvisoryLock(engine(settings), LOCK_RETRAIN)


@contextlib.contextmanager
def bootstrap_lock(settings: StackSettings) -> Iterator[None]:
    """Several workers (and, with a database, several replicas) start at once: one
    builds what is missing, the others wait and find it built."""
    Path(settings.artifacts_dir).mkdir(parents=True, exist_ok=True)
    with FileLock(str(Path(settings.artifacts_dir) / ".bootstrap.lock")):
        if not uses_database(settings):
            yield
            return
        from .db import LOCK_BOOTSTRAP, AdvisoryLock

        with AdvisoryLock(engine(settings), LOCK_BOOTSTRAP):
            yield


def publish_reference_files(settings: StackSettings) -> None:
    """With a database: store ref_data.csv and synthetic_data.csv there (after a first
    training wrote them), for the nodes that have no copy."""
    if not uses_database(settings):
        return
    from .db.files import put_file

    for name in REFERENCE_FILES:
        path = Path(settings.data_dir) / name
        if path.exists():
            put_file(engine(settings), name, path.read_bytes())


def copy_deployment(settings: StackSettings) -> int | None:
    """Moving a file deployment to the database: the version in use of ARTIFACTS_DIR (its
    model, figures and reason) and DATA_DIR's reference files, into DATABASE_URL when it
    holds no version yet. Answers the version it got there; None when the database
    already had one (it is never overwritten)."""
    target = open_artifact_store(settings)
    if target.versions():
        return None
    artifacts = ArtifactStore(settings.artifacts_dir).load()
    saved = save_copy(target, artifacts)
    publish_reference_files(settings)
    log.info(
        "copied version %d of %s into the database as version %d, with the reference files",
        artifacts.version,
        settings.artifacts_dir,
        saved.version,
    )
    return saved.version


def fetch_reference_files(settings: StackSettings) -> bool:
    """With a database: write the reference files it holds into DATA_DIR where they are
    missing; True if ref_data.csv is there afterwards."""
    ref = Path(settings.data_dir) / "ref_data.csv"
    if not uses_database(settings) or ref.exists():
        return ref.exists()
    from .db.files import get_file

    for name in REFERENCE_FILES:
        path = Path(settings.data_dir) / name
        data = get_file(engine(settings), name)
        if data is not None and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
            log.info("fetched %s from the database", name)
    return ref.exists()


def request_retrain(prod: Any, rows: int, reason: str) -> bool:
    """Record a due retraining; False when another replica already recorded it (the
    same row count fired twice: a retried request). Files: always True."""
    record = getattr(prod, "request_retrain", None)
    return True if record is None else record(rows, reason)


def database_stamp(settings: StackSettings) -> tuple | None:
    """With a database: (feedback rows, version in use), what a watcher compares to
    know the data changed (the file backend compares file sizes and times)."""
    if not uses_database(settings):
        return None
    import sqlalchemy as sa

    from .db import reachable

    with reachable("reading the row count"), engine(settings).connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT (SELECT rows FROM prod_counter WHERE id), "
                "(SELECT version FROM model_current WHERE id)"
            )
        ).first()
    return tuple(row) if row is not None else None
