"""Fixtures of the PostgreSQL tests: a real server (session), a fresh database per
test, and the trained project's artifacts and samples to seed it with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlstack.settings import PipelineSettings

from tests.postgres.pg import PostgresServer, pg_bin

BIN = pg_bin()


def _server() -> PostgresServer:
    if BIN is None:
        pytest.skip(
            "PostgreSQL binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or "
            "on PATH: apt-get install postgresql (tools/setup-machine.sh does)"
        )
    server = PostgresServer(BIN).init()
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session."""
    server = _server()
    yield server
    server.destroy()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own, free to stop and start."""
    server = _server()
    yield server
    server.destroy()


@pytest.fixture
def database_url(postgres: PostgresServer) -> str:
    """A new empty database on the session's server."""
    return postgres.create_database()


@pytest.fixture
def trained(trained_root: Path) -> PipelineSettings:
    """The trained project (read-only: ref_data.csv, artifacts, samples)."""
    return PipelineSettings(project_root=trained_root)
