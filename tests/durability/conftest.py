"""Fixtures for the durability suite: webhook processes killed and restarted on a shared
database, on both backends.

SQLite: a temporary file. PostgreSQL: a fresh database per test on the server of
`TEST_DATABASE_URL` (created, then dropped WITH (FORCE) at teardown). Unset, the
PostgreSQL cases are skipped with a visible reason; set but unreachable, they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.engine.engine import Engine
from bot.i18n.catalog import Localizer
from bot.runtime import build_engine
from tests.support.durability_support import (
    PG_SKIP_REASON,
    TOKEN,
    Bots,
    Database,
    FaultyStandIn,
    PostgresDatabase,
    SqliteDatabase,
)

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


@pytest.fixture(scope="module")
def standin() -> Iterator[FaultyStandIn]:
    server = FaultyStandIn(TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def content() -> tuple[Engine, Localizer]:
    """The bundled dialogs and catalogs, as the webhook processes load them."""
    return build_engine()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """TEST_DATABASE_URL: skip when unset, fail (not skip) when set but unreachable."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    import psycopg

    try:
        psycopg.connect(PG_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.fail(f"TEST_DATABASE_URL is set but PostgreSQL is unreachable: {exc}")
    return PG_URL


def _database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        return PostgresDatabase(url, f"advisor_{uuid.uuid4().hex[:16]}")
    return SqliteDatabase(tmp_path / "data" / "bot.sqlite3")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, empty database of each backend."""
    db = _database(request.param, request, tmp_path)
    yield db
    db.close()


@pytest.fixture
def pg_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, empty PostgreSQL database (for replicas, which need PostgreSQL)."""
    db = _database("postgres", request, tmp_path)
    yield db
    db.close()


@pytest.fixture
def bots(standin: FaultyStandIn, database: Database, tmp_path: Path) -> Iterator[Bots]:
    """Webhook processes on `database`; all stopped before the database is removed."""
    launcher = Bots(standin, database, tmp_path)
    yield launcher
    launcher.close()


@pytest.fixture
def pg_bots(standin: FaultyStandIn, pg_database: Database, tmp_path: Path) -> Iterator[Bots]:
    """Webhook processes on `pg_database`."""
    launcher = Bots(standin, pg_database, tmp_path)
    yield launcher
    launcher.close()
