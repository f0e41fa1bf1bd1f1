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

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from bot.engine.session import Session
from bot.store._common import (
    HASH_KEY_SECRET_NAME,
    OWNER_TIMEOUT,
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
from bot.store.base import (
    Change,
    CloseReminders,
    Conversation,
    DropReminder,
    EventRecord,
    Fire,
    Fired,
    Firing,
    OutboxMessage,
    PlanReminder,
    Reminder,
    ReminderChange,
    Store,
    StoreUnavailable,
)
from bot.store.sql import (
    Dialect,
    Statements,
    claim_parameters,
    erase_parameters,
    owner_beat_name,
    pending_migrations,
    pending_parameters,
    schema_version,
)

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
# Rows another replica's claim holds are skipped, not waited for: disjoint shares.
_CLAIM_REMINDERS = SQL.due_reminders + " FOR UPDATE SKIP LOCKED"


def _q(statement: str) -> LiteralString:
    # The statements are constants of bot/store/sql.py rendered at import, never built
    # from data, which is what psycopg's LiteralString typing guards against.
    return statement


#: How long the pool retries one lost connection (backoff 1, 2, 4 s, …) before giving
#: it up; the next request then starts a fresh attempt. psycopg_pool's default (5 min)
#: lets the backoff reach a minute, so after a long outage the store would keep
#: failing for up to a minute after the server is back.
_RECONNECT_TIMEOUT = 10.0

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
    :param connect_timeout: seconds one connection attempt may take (libpq's
        ``connect_timeout``), and `open` waits for the first connection.
    :param pool_timeout: seconds an operation waits for a pooled connection. Short, so
        that while the server is down an update fails with `StoreUnavailable` (a 503,
        and Telegram's redelivery later) within a few seconds instead of hanging.
    :param lock_timeout: seconds a conversation waits for a chat held by another
        replica before giving up with `StoreUnavailable` (a hung replica must not
        stall that chat forever).
    :param owner_timeout: seconds after its last `beat` that a sender's outbox claims
        stop counting (see `Store.beat`).
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
        connect_timeout: float = 3.0,
        pool_timeout: float = 3.0,
        lock_timeout: float = 30.0,
        owner_timeout: float = OWNER_TIMEOUT,
    ) -> None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError("schema: letters, digits and _ only, at most 63, not a digit first")
        try:
            conninfo_to_dict(conninfo)
        except psycopg.Error:
            # libpq's message quotes the part it cannot parse, which may be the
            # password (a bad %-escape, a space); `from None` keeps it out of the
            # traceback too. Checked here, the pool never retries (and logs) it.
            raise ValueError(
                "DATABASE_URL is not a valid PostgreSQL connection string"
                " (check the %-encoding of the user name and password)"
            ) from None
        self._conninfo = conninfo
        self._schema = schema
        self._hash_key = hash_key
        self._clock = clock or utc_now
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._lock_timeout_ms = int(lock_timeout * 1000)
        self._owner_timeout = timedelta(seconds=owner_timeout)
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
            reconnect_timeout=_RECONNECT_TIMEOUT,
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

    async def ping(self, timeout: float = 3.0) -> bool:
        """True when the database answers within `timeout` seconds (for /healthz, which
        must answer before its prober gives up, not after the pool's own timeout). The
        whole exchange is bounded: a server that stops answering mid-query, not only one
        that refuses connections, counts as down."""
        pool = self._pool
        if pool is None:
            return False
        try:
            async with asyncio.timeout(timeout), pool.connection(timeout=timeout) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, TimeoutError):
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
            # Nothing queued in an erasing block is kept: each row would name the chat.
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
        # executemany runs the rows in order (identity values ascend in the order
        # queued) in one round trip: measured 0.33 ms for 3 rows against 0.5 ms for
        # three execute() calls.
        if conv.outbox or conv.events:
            async with conn.cursor() as cursor:
                if conv.outbox:
                    await cursor.executemany(
                        _q(SQL.insert_outbox), [(key, Jsonb(payload), now) for payload in conv.outbox]
                    )
                if conv.events:
                    hashed = chat_hash(self._hash_key, key)
                    await cursor.executemany(
                        _q(SQL.insert_event), [(name, hashed, Jsonb(data), now) for name, data in conv.events]
                    )
        for change in conv.reminders:
            await self._change_reminders(conn, key, change, now)

    async def _change_reminders(self, conn: Conn, key: str, change: ReminderChange, now: datetime) -> None:
        """Apply one of a conversation block's reminder changes, inside its transaction
        (under the chat's lock, which the reminder loop respects)."""
        if isinstance(change, PlanReminder):
            if change.replaces:
                await conn.execute(_q(SQL.close_reminders), (key, change.kind))
            planned = (key, change.kind, to_utc(change.due_at), Jsonb(change.payload))
            await conn.execute(_q(SQL.insert_reminder), planned)
        elif isinstance(change, CloseReminders):
            cursor = await conn.execute(_q(SQL.close_reminders), (key, change.kind))
            if await cursor.fetchall() and change.event is not None:
                event = (change.event, chat_hash(self._hash_key, key), Jsonb({}), now)
                await conn.execute(_q(SQL.insert_event), event)
        elif isinstance(change, DropReminder):
            await conn.execute(_q(SQL.drop_reminder), (change.reminder_id, key))
        else:
            moved = (to_utc(change.due_at), Jsonb(change.payload), change.reminder_id, key, to_utc(change.was_due_at))
            cursor = await conn.execute(_q(SQL.move_reminder), moved)
            if not await cursor.fetchall():
                # Fired meanwhile (by a claim that began before this block): commit
                # nothing, so the update is applied again to the row as it is now.
                raise StoreUnavailable("the reminder changed during the block; nothing committed")

    async def _maybe_prune(self) -> None:
        """Forget processed update ids older than the retention, at most once an interval."""
        cutoff = self._prune_schedule.cutoff(to_utc(self._clock()))
        if cutoff is None:
            return

        async def prune(conn: Conn) -> int:
            cursor = await conn.execute(_q(SQL.prune_processed), (cutoff,))
            await conn.execute(_q(SQL.prune_owner_beats), (cutoff,))
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

    async def add_reminder(
        self, chat_key: str, due_at: datetime, payload: dict[str, Any], kind: str = "monthly"
    ) -> int:
        """Plan a reminder outside a conversation; returns its id."""

        async def insert(conn: Conn) -> int:
            values = (chat_key, kind, to_utc(due_at), Jsonb(payload))
            cursor = await conn.execute(_q(SQL.insert_reminder), values)
            row = await cursor.fetchone()
            assert row is not None
            return int(row[0])

        return await self._run(insert)

    async def fire_reminders(self, now: datetime, limit: int, fire: Fire) -> Fired:
        """Claim up to `limit` due rows and fire them, in one transaction (see
        `Store.fire_reminders`).

        ``FOR UPDATE SKIP LOCKED``: replicas claiming at once each get rows the others
        did not, so every row is fired once. A chat whose conversation is in a turn
        right now (its advisory lock is taken) is left for the next round, so a check-in
        never moves a conversation under a turn in progress.
        """
        at = to_utc(now)

        async def claim(conn: Conn) -> Fired:
            woken: dict[str, None] = {}
            fired = 0
            async with conn.transaction():
                cursor = await conn.execute(_q(_CLAIM_REMINDERS), (at, limit))
                for found in await cursor.fetchall():
                    row = _reminder(found)
                    cursor = await conn.execute(
                        "SELECT pg_try_advisory_xact_lock(%s)", (lock_id(self._namespace, row.chat_key),)
                    )
                    locked = await cursor.fetchone()
                    if locked is None or not locked[0]:
                        continue
                    cursor = await conn.execute(_q(SQL.load_session), (row.chat_key,))
                    raw = await cursor.fetchone()
                    firing = fire(row, read_session(raw[0])[0] if raw is not None else None)
                    await self._apply_firing(conn, row, firing)
                    fired += 1
                    if firing.outbox:
                        woken[row.chat_key] = None
            return Fired(fired, tuple(woken))

        return await self._run(claim)

    async def _apply_firing(self, conn: Conn, row: Reminder, firing: Firing) -> None:
        now = to_utc(self._clock())
        key = row.chat_key
        if firing.kind is None:
            await conn.execute(_q(SQL.retire_reminder), (row.id, row.due_at))
        else:
            assert firing.due_at is not None
            values = (firing.kind, to_utc(firing.due_at), Jsonb(firing.payload or {}), row.id, row.due_at)
            await conn.execute(_q(SQL.advance_reminder), values)
        if firing.session is not None:
            saved = session_row(firing.session)
            await conn.execute(
                _q(SQL.upsert_session),
                (key, Jsonb(saved.data), saved.flow, saved.state, saved.locale, saved.version, now, now),
            )
        for payload in firing.outbox:
            await conn.execute(_q(SQL.insert_outbox), (key, Jsonb(payload), now))
        if firing.events:
            hashed = chat_hash(self._hash_key, key)
            for name in firing.events:
                await conn.execute(_q(SQL.insert_event), (name, hashed, Jsonb({}), now))

    async def reminders(self, chat_key: str) -> list[Reminder]:
        """The chat's reminders and check-ins, soonest first."""

        async def query(conn: Conn) -> list[Any]:
            cursor = await conn.execute(_q(SQL.chat_reminders), (chat_key,))
            return await cursor.fetchall()

        return [_reminder(r) for r in await self._run(query)]

    async def drop_reminders(self, chat_key: str) -> int:
        """Delete all of the chat's reminders and check-ins; how many there were."""

        async def drop(conn: Conn) -> int:
            cursor = await conn.execute(_q(SQL.erase_chat[1]), (chat_key,))
            return cursor.rowcount

        return await self._run(drop)

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

    async def events(self, since: datetime | None = None) -> list[EventRecord]:
        """Events recorded at `since` or later (all when None), oldest first."""

        async def query(conn: Conn) -> list[Any]:
            if since is None:
                cursor = await conn.execute(_q(SQL.all_events))
            else:
                cursor = await conn.execute(_q(SQL.events_since), (to_utc(since),))
            return await cursor.fetchall()

        return [
            EventRecord(name=r[0], chat_hash=r[1], data=_json_object(r[2]), created_at=to_utc(r[3]))
            for r in await self._run(query)
        ]

    async def probe_write(self) -> None:
        """Commit a write to the ``heartbeat`` table (autocommit: committed when it
        returns); `StoreUnavailable` when it fails (read-only, disk full, down)."""
        values = ("probe", to_utc(self._clock()))
        await self._run(lambda conn: conn.execute(_q(SQL.beat), values))

    # -- the outbox ----------------------------------------------------------------

    async def beat(self, owner: str) -> None:
        """Record that sender `owner` is alive now."""
        values = (owner_beat_name(owner), to_utc(self._clock()))
        await self._run(lambda conn: conn.execute(_q(SQL.beat), values))

    async def claim_outbox(self, chat_key: str, owner: str, lease: timedelta, limit: int = 50) -> list[OutboxMessage]:
        """Claim the chat's oldest unsent messages for `owner` (see `Store.claim_outbox`)."""
        now = to_utc(self._clock())
        parameters = claim_parameters(chat_key, owner, now, now + lease, now - self._owner_timeout, limit)

        async def claim(conn: Conn) -> list[Any]:
            async with conn.transaction():
                # Claims of one chat take turns (a separate lock from the conversation's:
                # a turn in progress must not hold up sending the previous one's replies);
                # the claim's snapshot, taken after the lock, sees the previous claim.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(%s)", (lock_id(self._namespace, "outbox\0" + chat_key),)
                )
                cursor = await conn.execute(_q(SQL.claim_outbox), parameters)
                return await cursor.fetchall()

        rows = await self._run(claim)
        return sorted(
            (OutboxMessage(id=int(r[0]), chat_key=r[1], payload=_json_object(r[2]), attempts=int(r[3])) for r in rows),
            key=lambda message: message.id,
        )

    async def mark_sent(self, *message_ids: int) -> None:
        """Delete the messages from the outbox, in one transaction."""
        rows = [(message_id,) for message_id in message_ids]

        async def delete(conn: Conn) -> None:
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(_q(SQL.delete_outbox), rows)

        if rows:
            await self._run(delete)

    async def defer_outbox(self, chat_key: str, until: datetime) -> None:
        """Release the chat's messages, nobody to claim them before `until`."""
        await self._run(lambda conn: conn.execute(_q(SQL.defer_outbox), (to_utc(until), chat_key)))

    async def release_outbox(self, owner: str) -> int:
        """Give up `owner`'s claims; how many messages were released."""

        async def release(conn: Conn) -> int:
            cursor = await conn.execute(_q(SQL.release_outbox), (owner,))
            return cursor.rowcount

        return await self._run(release)

    async def pending_chats(self, now: datetime, older_than: timedelta, limit: int = 100) -> list[str]:
        """Chats whose unsent messages nobody holds: unclaimed since `now - older_than`,
        whose lease or deferral ended by `now`, or whose owner stopped beating; oldest first."""
        at = to_utc(now)
        parameters = pending_parameters(at - older_than, at, at - self._owner_timeout, limit)

        async def query(conn: Conn) -> list[Any]:
            cursor = await conn.execute(_q(SQL.pending_chats), parameters)
            return await cursor.fetchall()

        return [r[0] for r in await self._run(query)]


def _reminder(row: Any) -> Reminder:
    """A `reminders` row (id, chat_key, kind, due_at, payload) as the interface's type."""
    return Reminder(id=int(row[0]), chat_key=row[1], kind=row[2], due_at=to_utc(row[3]), payload=_json_object(row[4]))


def _json_object(value: Any) -> dict[str, Any]:
    """A jsonb value as the dict the interface promises."""
    return value if isinstance(value, dict) else {"value": value}
