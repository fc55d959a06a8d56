"""Small files every node needs (ref_data.csv, synthetic_data.csv), kept in the table
reference_files, each with its sha256."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import reachable


def put_file(engine: Engine, name: str, data: bytes) -> None:
    with reachable(f"storing {name}"), engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO reference_files (name, data, sha256) VALUES (:n, :d, :s) "
                "ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, "
                "sha256 = EXCLUDED.sha256, updated_at = now()"
            ),
            {"n": name, "d": data, "s": hashlib.sha256(data).hexdigest()},
        )


def get_file(engine: Engine, name: str) -> bytes | None:
    with reachable(f"reading {name}"), engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT data, sha256 FROM reference_files WHERE name = :n"), {"n": name}
        ).first()
    if row is None:
        return None
    data = bytes(row.data)
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise ValueError(f"{name} in the database does not match its sha256: refused")
    return data
