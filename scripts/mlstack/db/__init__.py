"""PostgreSQL: one connection pool per process, the schema migrations, advisory locks.

SQLAlchemy 2 (Core) over psycopg 3. A URL written `postgresql://...` uses psycopg 3.
The migrations are the numbered SQL files of mlstack/db/migrations (001_*.sql, ...),
applied in order at the first connection of a process, under an advisory lock (several
replicas start at once), each recorded in the table schema_version.

A database that cannot be reached raises mlstack.errors.DatabaseUnavailableError (the
API's 503), never a driver error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from importlib import resources

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from ..errors import DatabaseUnavailableError

log = logging.getLogger(__name__)

# Advisory lock keys (any bigint; these spell nothing).
LOCK_MIGRATE = 730_001
LOCK_RETRAIN = 730_002
LOCK_BOOTSTRAP = 730_003
LOCK_PROD_TABLE = 730_004

# What a database that is down, restarting or out of reach raises.
UNREACHABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)

_engines: dict[tuple, Engine] = {}
_guard = threading.Lock()


def normalise_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def redacted(url: str) -> str:
    return normalise_url(url).render_as_string(hide_password=True)


@contextlib.contextmanager
def reachable(what: str) -> Iterator[None]:
    """Turn the driver's 'cannot reach the database' errors into DatabaseUnavailableError."""
    try:
        yield
    except UNREACHABLE as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        raise DatabaseUnavailableError(f"the database is unavailable ({what}): {first}") from exc


def get_engine(url: str, pool_size: int = 5, connect_timeout: float = 3.0) -> Engine:
    """This process's engine for `url` (created, and the schema migrated, on first use)."""
    key = (url, pool_size, connect_timeout, os.getpid())
    with _guard:
        engine = _engines.get(key)
        if engine is None:
            engine = sa.create_engine(
                normalise_url(url),
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=max(5.0, 2 * connect_timeout),
                pool_pre_ping=True,  # a connection the database dropped is replaced
                connect_args={"connect_timeout": max(1, round(connect_timeout))},
            )
            with reachable("migrating the schema"):
                migrate(engine)
            _engines[key] = engine
    return engine


def migrations() -> list[tuple[int, str, str]]:
    """(number, file name, SQL) of every migration file, in order."""
    folder = resources.files(__package__) / "migrations"
    out = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d+)_\w+\.sql", entry.name)
        if match:
            out.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def statements(sql: str) -> list[str]:
    """The statements of a migration file: `--` comments dropped, split at `;` ending a
    line (the files keep to plain DDL, no function bodies)."""
    text = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return [part.strip() for part in re.split(r";\s*(?:\n|$)", text) if part.strip()]


def migrate(engine: Engine) -> list[int]:
    """Apply the migrations not applied yet; returns their numbers."""
    applied = []
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_MIGRATE})
        conn.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        done = set(conn.scalars(sa.text("SELECT version FROM schema_version")))
        for number, name, sql in migrations():
            if number in done:
                continue
            for statement in statements(sql):
                conn.exec_driver_sql(statement)
            conn.execute(
                sa.text("INSERT INTO schema_version (version, name) VALUES (:v, :n)"),
                {"v": number, "n": name},
            )
            applied.append(number)
    if applied:
        log.info("database schema: applied migrations %s", applied)
    return applied


class AdvisoryLock:
    """`pg_advisory_lock(key)` held on its own connection for the `with` block. The
    database releases it if the holder's session dies (a crashed process)."""

    def __init__(self, engine: Engine, key: int) -> None:
        self.engine = engine
        self.key = key
        self._conn: sa.Connection | None = None

    def __enter__(self) -> AdvisoryLock:
        with reachable("taking a lock"):
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": self.key})
            except BaseException:
                conn.close()
                raise
        self._conn = conn
        return self

    def __exit__(self, *exc_info: object) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        except Exception:  # the session is gone, and its lock with it
            with contextlib.suppress(Exception):
                conn.invalidate()
        finally:
            with contextlib.suppress(Exception):
                conn.close()


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False
