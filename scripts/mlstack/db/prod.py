"""The production-data store on PostgreSQL: the table prod_data.

Its columns are those of prod_data.csv, in the same order (PCA_1..PCA_n, target,
prediction, timestamp, model_version, prediction_id), then `seq`: the row count when
the row was stored, which orders the rows. One transaction per row takes the next
count from prod_counter (a one-row table, locked for the few microseconds of the
insert), so every row gets its own count cluster-wide and the every-k trigger fires
once per k rows. prediction_id is unique: a retried request is stored once (the
retry gets the count of the first).

Labels are stored as text and read back as pandas reads them from the CSV (numbers
when they all are), so retraining, the triggers, reporting and the exporter take the
frame read() returns exactly as they take the file's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..prod_store import prod_columns
from . import LOCK_PROD_TABLE, ping, reachable

log = logging.getLogger(__name__)

TABLE = "prod_data"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _as_read_csv_would(column: pd.Series) -> pd.Series:
    """Text labels back as numbers when they all are numbers (as read_csv does)."""
    if column.empty:
        return column
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        return column


class PostgresProdStore:
    def __init__(self, engine: Engine, n_components: int, path: Path | None = None) -> None:
        self.engine = engine
        self.columns = prod_columns(n_components)
        self.path = path  # where export_prod.py writes the file; for messages only
        quoted = ", ".join(_quote(c) for c in self.columns)
        params = ", ".join(f":c{i}" for i in range(len(self.columns)))
        self._insert = sa.text(
            f"INSERT INTO {TABLE} ({quoted}, seq) VALUES ({params}, :seq) "  # noqa: S608
            "ON CONFLICT (prediction_id) DO NOTHING RETURNING seq"
        )
        self._ensure_table()

    def __repr__(self) -> str:
        return f"PostgresProdStore({self.engine.url.render_as_string(hide_password=True)})"

    def _ensure_table(self) -> None:
        features = [c for c in self.columns if c.startswith("PCA_")]
        ddl = (
            f"CREATE TABLE {TABLE} ("
            + ", ".join(f"{_quote(c)} double precision NOT NULL" for c in features)
            + ", target text NOT NULL, prediction text NOT NULL, "
            '"timestamp" text, model_version integer, prediction_id text NOT NULL UNIQUE, '
            "seq bigint NOT NULL UNIQUE)"
        )
        with reachable("creating the feedback table"), self.engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_PROD_TABLE})
            existing = list(
                conn.scalars(
                    sa.text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = current_schema() AND table_name = :t "
                        "ORDER BY ordinal_position"
                    ),
                    {"t": TABLE},
                )
            )
            if not existing:
                conn.exec_driver_sql(ddl)
                log.info("created the table %s (%d columns)", TABLE, len(self.columns) + 1)
            elif existing[: len(self.columns)] != self.columns:
                raise ValueError(
                    f"the table {TABLE} has other columns than this model writes "
                    f"(it starts {existing[:3]}, {len(existing)} columns; this model writes "
                    f"{len(self.columns)}): export it (scripts/export_prod.py) and drop it "
                    "to start a new one"
                )

    # -- the file store's interface ---------------------------------------------------
    def repair(self) -> int:
        """Nothing to repair: a row is in the table whole or not at all."""
        return 0

    def rows(self) -> int:
        with reachable("counting feedback rows"), self.engine.connect() as conn:
            return int(conn.scalar(sa.text("SELECT rows FROM prod_counter WHERE id")) or 0)

    def append(
        self,
        vector: np.ndarray,
        target: int | str,
        prediction: int | str,
        *,
        timestamp: str,
        model_version: int,
        prediction_id: str,
    ) -> int:
        """Store one row in its own transaction; returns the row count at its insert
        (for a prediction_id already stored: that row's count, nothing stored)."""
        values = [
            *(float(v) for v in vector),
            str(target),
            str(prediction),
            timestamp,
            int(model_version),
            str(prediction_id),
        ]
        if len(values) != len(self.columns):
            raise ValueError(f"expected {len(self.columns) - 5} vector values, got {len(vector)}")
        params = {f"c{i}": value for i, value in enumerate(values)}
        with reachable("storing a feedback row"), self.engine.connect() as conn:
            seq = conn.scalar(
                sa.text("UPDATE prod_counter SET rows = rows + 1 WHERE id RETURNING rows")
            )
            stored = conn.scalar(self._insert, {**params, "seq": seq})
            if stored is not None:
                conn.commit()  # acknowledged only once this returns
                return int(stored)
            conn.rollback()  # a retry of a stored row: the count goes back
            return int(
                conn.scalar(
                    sa.text(f"SELECT seq FROM {TABLE} WHERE prediction_id = :p"),  # noqa: S608
                    {"p": str(prediction_id)},
                )
            )

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows in insertion order (`columns` only, if given)."""
        wanted = list(columns) if columns is not None else list(self.columns)
        unknown = [c for c in wanted if c not in self.columns]
        if unknown:
            raise ValueError(f"prod_data has no columns {unknown}")
        query = sa.text(
            f"SELECT {', '.join(_quote(c) for c in wanted)} FROM {TABLE} ORDER BY seq"  # noqa: S608
        )
        with reachable("reading feedback rows"), self.engine.connect() as conn:
            result = conn.execute(query)
            frame = pd.DataFrame(result.fetchall(), columns=wanted)
        if frame.empty:
            return pd.DataFrame(columns=wanted)
        for name in ("target", "prediction"):
            if name in frame:
                frame[name] = _as_read_csv_would(frame[name])
        for name in wanted:
            if name.startswith("PCA_"):
                frame[name] = frame[name].astype(np.float64)
        return frame

    # -- what only the database does ----------------------------------------------------
    def request_retrain(self, rows: int, reason: str) -> bool:
        """Record a due retraining, once per (trigger, row count); False if it was."""
        kind = "every_k" if reason.endswith("feedback rows") else reason.split(":", 1)[0]
        with reachable("recording a retraining"), self.engine.begin() as conn:
            recorded = conn.scalar(
                sa.text(
                    "INSERT INTO retrain_requests (kind, rows, reason) VALUES (:k, :r, :why) "
                    "ON CONFLICT (kind, rows) DO NOTHING RETURNING id"
                ),
                {"k": kind, "r": int(rows), "why": reason},
            )
        return recorded is not None

    def pending_retrain(self, covered: int) -> tuple[int, str] | None:
        """The newest recorded retraining no version was trained on yet (row count and
        reason), or None."""
        with reachable("reading retraining requests"), self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT rows, reason FROM retrain_requests WHERE rows > :c "
                    "ORDER BY rows DESC LIMIT 1"
                ),
                {"c": int(covered)},
            ).first()
        return None if row is None else (int(row.rows), row.reason)

    def ping(self) -> bool:
        return ping(self.engine)
