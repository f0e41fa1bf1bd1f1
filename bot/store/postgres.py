"""The PostgreSQL store: for several bot replicas sharing one database.

psycopg 3 async with a `psycopg_pool.AsyncConnectionPool`. A `conversation` block is one
transaction on one pooled connection, from the lock to the commit.

Locking a chat: ``pg_advisory_xact_lock`` on a 64-bit number derived from the chat key,
taken as the transaction's first statement, released by the server at commit or
rollback (or when the connection dies). Chosen over "insert a placeholder row, then
``SELECT ... FOR UPDATE``" because:

* it works the same whether or not the chat has a row yet, and leaves no placeholder
  rows behind (they would count as conversations, and need cleaning after ``/forget``);
* erasing a chat deletes its row; with row locks a waiter blocked on that row wakes up
  to find no row and holds no lock, which needs a retry loop to get right;
* the number is computed in Python with a 64-bit hash, not ``hashtext`` (32 bits,
  undocumented): two chats sharing a lock is practically impossible, and the value
  does not depend on the server version.

Each statement after the lock runs with a fresh READ COMMITTED snapshot, so it sees
everything the previous holder committed: two replicas apply the same chat's updates
one after the other, never both from the same old state. Within one process an
`asyncio.Lock` per chat comes first, so a burst on one chat waits in the process
instead of holding one pooled connection per waiting update.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from bot.engine.session import Session
from bot.store._common import (
    HASH_KEY_SECRET_NAME,
    Clock,
    KeyedLocks,
    PruneSchedule,
    chat_hash,
    lock_id,
    read_session,
    session_row,
    to_utc,
    utc_now,
)
from bot.store.base import Change, Conversation, Reminder, Store, StoreUnavailable
from bot.store.sql import Dialect, Statements, erase_parameters, pending_migrations, schema_version

log = logging.getLogger("bot.store.postgres")

T = TypeVar("T")
Conn = AsyncConnection[Any]

# What differs from SQLite; everything else is in bot/store/sql.py.
POSTGRES = Dialect(
    name="postgresql",
    types={
        "text": "text",
        "json": "jsonb",
        "time": "timestamptz",
        "bytes": "bytea",
        "int": "integer",
        "bigint": "bigint",
        "id": "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
    placeholder="%s",
)
SQL = Statements.for_dialect(POSTGRES)


def _q(statement: str) -> LiteralString:
    # The statements are constants of bot/store/sql.py rendered at import, never built
    # from data, which is what psycopg's LiteralString typing guards against.
    return statement


_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _unavailable(exc: BaseException) -> StoreUnavailable:
    # The class and SQLSTATE only: a server message can quote row values (chat keys).
    code = getattr(exc, "sqlstate", None)
    detail = f"{type(exc).__name__}" + (f" (SQLSTATE {code})" if code else "")
    return StoreUnavailable(f"PostgreSQL failed: {detail}")


class PostgresStore(Store):
    """Sessions and the rest in PostgreSQL, safe with several replicas.

    :param conninfo: a libpq URL (``postgresql://`` or ``postgres://``) or
        ``key=value`` connection string. Never logged (it may carry a password).
    :param schema: keep the tables in this schema (created if missing) instead of the
        first one on the server's ``search_path``. Letters, digits and ``_`` only.
    :param hash_key: secret for the HMAC of chat keys in events (EVENT_HASH_KEY, read
        by bot/config.py). Default: a random key generated once and kept in the database
        (table ``store_secrets``), so every replica uses the same one. Changing it
        unlinks existing events from their chats.
    :param clock: returns the current time (tests pass a fake one); default UTC now.
    :param min_size: connections the pool keeps open.
    :param max_size: most connections the pool opens; one per conversation in
        progress on different chats.
    :param connect_timeout: seconds `open` waits for the first connection.
    :param pool_timeout: seconds an operation waits for a free pooled connection.
    :param lock_timeout: seconds a conversation waits for a chat held by another
        replica before giving up with `StoreUnavailable` (a hung replica must not
        stall that chat forever).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,
        hash_key: bytes | None = None,
        clock: Clock | None = None,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        pool_timeout: float = 30.0,
        lock_timeout: float = 30.0,
    ) -> None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError("schema: letters, digits and _ only, at most 63, not a digit first")
        self._conninfo = conninfo
        self._schema = schema
        self._hash_key = hash_key
        self._clock = clock or utc_now
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._lock_timeout_ms = int(lock_timeout * 1000)
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._locks = KeyedLocks()
        # Advisory locks are per database, not per schema: mixing the schema in keeps
        # stores in different schemas (tests, two bots) from waiting on each other.
        self._namespace = schema or ""
        self._prune_schedule = PruneSchedule()

    # -- lifecycle ---------------------------------------------------------------

    async def _configure(self, conn: Conn) -> None:
        """Run on every new pooled connection (autocommit, so the settings stay)."""
        if self._schema is not None:
            await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
        await conn.execute("SET TIME ZONE 'UTC'")
        await conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{self._lock_timeout_ms}ms",))

    async def open(self) -> None:
        """Open the pool and apply missing migrations (safe with replicas starting at once)."""
        if self._pool is not None:
            return
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self._conninfo,
            # autocommit: reads outside a block never leave a transaction open;
            # blocks open theirs explicitly with conn.transaction().
            kwargs={"autocommit": True, "connect_timeout": max(1, round(self._connect_timeout))},
            min_size=self._min_size,
            max_size=self._max_size,
            open=False,
            configure=self._configure,
            # A connection killed while idle (server restart, failover) is noticed on
            # checkout and replaced, instead of failing the next update.
            check=AsyncConnectionPool.check_connection,
            timeout=self._pool_timeout,
            name="overdue-advisor-store",
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise _unavailable(exc) from exc
        self._pool = pool
        try:
            applied, version = await self._run(self._migrate)
            log.info("PostgreSQL store open, schema version %d (%d migration(s) applied)", version, applied)
            await self._maybe_prune()
        except BaseException:
            await self.close()
            raise

    async def _migrate(self, conn: Conn) -> tuple[int, int]:
        # One transaction under an advisory lock: a second replica starting at the same
        # time waits here, then finds every migration applied. The transaction-scoped
        # lock (pg_advisory_xact_lock) is released by commit, rollback or a dropped
        # connection, so a replica dying mid-migration cannot leave it held.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id(self._namespace, "migrate"),))
            if self._schema is not None:
                await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)))
            await conn.execute(_q(SQL.create_migrations_table))
            cursor = await conn.execute(_q(SQL.applied_versions))
            done = {row[0] for row in await cursor.fetchall()}
            pending = pending_migrations(done)
            for version, _ in pending:
                for statement in SQL.migrations[version - 1]:
                    await conn.execute(_q(statement))
                await conn.execute(_q(SQL.record_migration), (version, to_utc(self._clock())))
            applied, newest = len(pending), schema_version(done)
            if self._hash_key is None:
                await conn.execute(_q(SQL.keep_secret), (HASH_KEY_SECRET_NAME, secrets.token_bytes(32)))
                cursor = await conn.execute(_q(SQL.read_secret), (HASH_KEY_SECRET_NAME,))
                row = await cursor.fetchone()
                assert row is not None
                self._hash_key = bytes(row[0])
        return applied, newest

    async def close(self) -> None:
        """Close the pool; the store can be opened again."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self, timeout: float = 5.0) -> bool:
        """True when the database answers within `timeout` seconds (for /healthz, which
        must answer before its prober gives up, not after the pool's own timeout)."""
        pool = self._pool
        if pool is None:
            return False
        try:
            async with pool.connection(timeout=timeout) as conn:
                await conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _require_pool(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            raise RuntimeError("the store is not open: await store.open() first")
        return self._pool

    async def _run(self, op: Callable[[Conn], Awaitable[T]]) -> T:
        """`op` on a pooled connection; driver and pool errors become StoreUnavailable."""
        pool = self._require_pool()
        try:
            async with pool.connection() as conn:
                return await op(conn)
        except psycopg.Error as exc:  # includes PoolTimeout and PoolClosed
            raise _unavailable(exc) from exc

    # -- conversations -----------------------------------------------------------

    @asynccontextmanager
    async def conversation(self, chat_key: str, update_id: int | None = None) -> AsyncIterator[Conversation]:
        """Lock `chat_key` (in this process, then across replicas), load its session,
        and on a clean exit commit what was saved or erased, with `update_id`."""
        pool = self._require_pool()
        async with self._locks.hold(chat_key):
            log.debug("conversation on chat %s", chat_key)
            body_failed = False
            try:
                async with pool.connection() as conn, conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id(self._namespace, chat_key),))
                    # A separate statement after the lock: its snapshot is taken once
                    # the lock is ours, so it sees the previous holder's commit.
                    cursor = await conn.execute(
                        "SELECT (SELECT data FROM sessions WHERE chat_key = %(k)s),"
                        " EXISTS (SELECT 1 FROM processed_updates"
                        "         WHERE chat_key = %(k)s AND update_id = %(u)s)",
                        {"k": chat_key, "u": update_id},
                    )
                    found = await cursor.fetchone()
                    assert found is not None
                    raw, duplicate = found[0], bool(found[1]) and update_id is not None
                    session, damaged = read_session(raw) if raw is not None else (None, False)
                    conv = Conversation(chat_key=chat_key, session=session, duplicate=duplicate, damaged=damaged)
                    try:
                        yield conv
                    except BaseException:
                        # Rolled back by conn.transaction(); the caller's exception
                        # goes through unchanged.
                        body_failed = True
                        raise
                    if not duplicate:
                        await self._finish(conn, conv, update_id)
                # Committed here, when conn.transaction() exits.
            except psycopg.Error as exc:
                if body_failed:
                    raise
                raise _unavailable(exc) from exc
        await self._maybe_prune()

    async def _finish(self, conn: Conn, conv: Conversation, update_id: int | None) -> None:
        now = to_utc(self._clock())
        key = conv.chat_key
        # Separate statements rather than a pipeline: measured here, psycopg's pipeline
        # mode made the block slower (4.8 ms against 2.2 ms), not faster.
        if conv.change is Change.ERASE:
            for statement, parameters in zip(
                SQL.erase_chat, erase_parameters(key, chat_hash(self._hash_key, key)), strict=True
            ):
                await conn.execute(_q(statement), parameters)
            return
        if conv.saved is not None:
            row = session_row(conv.saved)
            await conn.execute(
                _q(SQL.upsert_session),
                (key, Jsonb(row.data), row.flow, row.state, row.locale, row.version, now, now),
            )
        if update_id is not None:
            await conn.execute(_q(SQL.record_update), (key, update_id, now))

    async def _maybe_prune(self) -> None:
        """Forget processed update ids older than the retention, at most once an interval."""
        cutoff = self._prune_schedule.cutoff(to_utc(self._clock()))
        if cutoff is None:
            return

        async def prune(conn: Conn) -> int:
            cursor = await conn.execute(_q(SQL.prune_processed), (cutoff,))
            return cursor.rowcount

        try:
            deleted = await self._run(prune)
        except StoreUnavailable as exc:
            # Housekeeping: never fail the update that happened to trigger it.
            log.warning("could not prune processed update ids: %s", exc)
            return
        if deleted:
            log.info("forgot %d processed update id(s) older than the retention", deleted)

    # -- the rest of the interface ---------------------------------------------

    async def load(self, chat_key: str) -> Session | None:
        """The stored session, or None when there is none or it cannot be read."""

        async def query(conn: Conn) -> Any:
            cursor = await conn.execute(_q(SQL.load_session), (chat_key,))
            return await cursor.fetchone()

        found = await self._run(query)
        return read_session(found[0])[0] if found is not None else None

    async def record_event(self, name: str, chat_key: str, data: dict[str, Any]) -> None:
        """Count event `name`; the chat is stored only as its keyed hash."""
        values = (name, chat_hash(self._hash_key, chat_key), Jsonb(data), to_utc(self._clock()))
        await self._run(lambda conn: conn.execute(_q(SQL.insert_event), values))

    async def add_reminder(self, chat_key: str, due_at: datetime, payload: dict[str, Any]) -> int:
        """Plan a reminder; returns its id."""

        async def insert(conn: Conn) -> int:
            cursor = await conn.execute(_q(SQL.insert_reminder), (chat_key, to_utc(due_at), Jsonb(payload)))
            row = await cursor.fetchone()
            assert row is not None
            return int(row[0])

        return await self._run(insert)

    async def due_reminders(self, now: datetime, limit: int = 100) -> list[Reminder]:
        """Unsent reminders due at `now` or earlier, oldest first."""

        async def query(conn: Conn) -> list[Any]:
            cursor = await conn.execute(_q(SQL.due_reminders), (to_utc(now), limit))
            return await cursor.fetchall()

        rows = await self._run(query)
        return [
            Reminder(
                id=int(r[0]),
                chat_key=r[1],
                due_at=to_utc(r[2]),
                payload=r[3] if isinstance(r[3], dict) else {"value": r[3]},
            )
            for r in rows
        ]

    async def purge_idle(self, idle_since: datetime) -> int:
        """Delete sessions last written before `idle_since`; returns how many."""

        async def purge(conn: Conn) -> int:
            cursor = await conn.execute(_q(SQL.purge_idle), (to_utc(idle_since),))
            return cursor.rowcount

        deleted = await self._run(purge)
        self._prune_schedule.now_due()
        await self._maybe_prune()
        log.info("purged %d idle session(s)", deleted)
        return deleted

    async def stats(self) -> dict[str, int]:
        """``{"active_conversations": n, "event:<name>": count, ...}``."""

        async def query(conn: Conn) -> dict[str, int]:
            # Two statements, two snapshots: the counts are for a dashboard, a few
            # commits' skew between them does not matter.
            cursor = await conn.execute(_q(SQL.count_sessions))
            row = await cursor.fetchone()
            result = {"active_conversations": int(row[0]) if row else 0}
            cursor = await conn.execute(_q(SQL.count_events))
            for name, count in await cursor.fetchall():
                result[f"event:{name}"] = int(count)
            return result

        return await self._run(query)
