"""Fixtures for the store contract suite: one `store` fixture, two backends.

SQLite uses a real file under `tmp_path`. PostgreSQL uses `TEST_DATABASE_URL`: unset,
its tests are skipped; set but unreachable, they fail. Each PostgreSQL test gets a
fresh schema, dropped afterwards.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.store.base import Store

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
PG_SKIP_REASON = "TEST_DATABASE_URL not set: PostgreSQL tests skipped"
HASH_KEY = b"contract-test-hash-key"
TABLES = ("sessions", "processed_updates", "reminders", "events", "outbox")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Harness(ABC):
    """One database for one test, the stores opened on it, and raw SQL access to check
    what the stores wrote."""

    name: str

    def __init__(self) -> None:
        self.stores: list[Store] = []
        self.clock = FakeClock()

    @abstractmethod
    def _new_store(self, **options: Any) -> Store: ...

    def make(self, **options: Any) -> Store:
        """A new, unopened store object on this database (closed at teardown)."""
        options.setdefault("hash_key", HASH_KEY)
        options.setdefault("clock", self.clock)
        store = self._new_store(**options)
        self.stores.append(store)
        return store

    async def open_new(self, **options: Any) -> Store:
        """`make` and `open`."""
        store = self.make(**options)
        await store.open()
        return store

    @abstractmethod
    async def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Raw SQL with `?` placeholders."""

    @abstractmethod
    async def damage(self, chat_key: str) -> None:
        """Overwrite the chat's stored session with something that is not a session."""

    async def count(self, table: str, where: str = "1 = 1", *params: Any) -> int:
        rows = await self.query(f"SELECT count(*) FROM {table} WHERE {where}", *params)
        return int(rows[0][0])

    async def rows_mentioning(self, chat_key: str, chat_hash: str) -> dict[str, int]:
        """Per table, how many rows name the chat (events: by hash)."""
        counts = {
            table: await self.count(table, "chat_key = ?", chat_key)
            for table in ("sessions", "processed_updates", "reminders", "outbox")
        }
        counts["events"] = await self.count("events", "chat_hash = ?", chat_hash)
        return counts

    async def versions(self) -> list[int]:
        return [row[0] for row in await self.query("SELECT version FROM schema_migrations ORDER BY version")]

    async def teardown(self) -> None:
        for store in self.stores:
            await store.close()


class SqliteHarness(Harness):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        # An absolute path gives sqlite:////abs/path.
        self.url = f"sqlite:///{path}"

    def _new_store(self, **options: Any) -> Store:
        from bot.store.sqlite import SqliteStore

        return SqliteStore(self.url, **options)

    async def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path) as conn:
            rows = conn.execute(sql, params).fetchall()
        conn.close()
        return rows

    async def damage(self, chat_key: str) -> None:
        await self.query("UPDATE sessions SET data = ? WHERE chat_key = ?", "{not json", chat_key)


class PostgresHarness(Harness):
    name = "postgres"

    def __init__(self) -> None:
        import psycopg.conninfo

        super().__init__()
        self.schema = f"store_test_{uuid.uuid4().hex[:12]}"
        # application_name lets a test find this store's server processes.
        self.conninfo = psycopg.conninfo.make_conninfo(PG_URL, application_name=self.schema)

    def _new_store(self, **options: Any) -> Store:
        from bot.store.postgres import PostgresStore

        options.setdefault("schema", self.schema)
        options.setdefault("connect_timeout", 5)
        return PostgresStore(self.conninfo, **options)

    async def _connect(self) -> Any:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(PG_URL, autocommit=True)
        await conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    async def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = await self._connect()
        async with conn:
            cursor = await conn.execute(sql.replace("?", "%s"), params)
            return await cursor.fetchall() if cursor.description else []

    async def damage(self, chat_key: str) -> None:
        # jsonb cannot hold broken JSON; valid JSON that is not a session is the
        # PostgreSQL way for a row to be unreadable.
        await self.query("UPDATE sessions SET data = '{\"flow\": 1}'::jsonb WHERE chat_key = ?", chat_key)

    async def terminate_open_transactions(self) -> int:
        """Kill this test's server processes that sit inside a transaction."""
        rows = await self.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = ? AND state LIKE 'idle in transaction%%'",
            self.schema,
        )
        return sum(1 for (ok,) in rows if ok)

    async def teardown(self) -> None:
        await super().teardown()
        conn = await self._connect()
        async with conn:
            # A failed test may leave a block open; its locks would make DROP wait forever.
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND pid <> pg_backend_pid()",
                (self.schema,),
            )
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


@pytest.fixture(scope="session")
def postgres_reachable() -> None:
    """Fail (not skip) every PostgreSQL test when TEST_DATABASE_URL is set but dead."""
    import psycopg

    try:
        psycopg.connect(PG_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.fail(f"TEST_DATABASE_URL is set but PostgreSQL is unreachable: {exc}")


@pytest.fixture
async def make_harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[str], Harness]]:
    """Build harnesses (each on its own empty database) by backend name; tears every
    one down after the test."""
    made: list[Harness] = []

    def build(kind: str) -> Harness:
        if kind == "postgres":
            if not PG_URL:
                pytest.skip(PG_SKIP_REASON)
            request.getfixturevalue("postgres_reachable")
            harness: Harness = PostgresHarness()
        else:
            # The folder does not exist yet: the store must create it.
            harness = SqliteHarness(tmp_path / f"db{len(made)}" / "data" / "bot.sqlite3")
        made.append(harness)
        return harness

    yield build
    for harness in made:
        await harness.teardown()


HARNESS = pytest.StashKey[Harness]()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, make_harness: Callable[[str], Harness]) -> AsyncIterator[Store]:
    """An open store on a fresh database, for each backend."""
    harness = make_harness(request.param)
    request.node.stash[HARNESS] = harness
    yield await harness.open_new()


@pytest.fixture
def harness(store: Store, request: pytest.FixtureRequest) -> Harness:
    """The database behind `store`: raw access, more stores on it, its clock."""
    return request.node.stash[HARNESS]
