"""The SQLite store: the default, for one bot process on one machine.

Blocking `sqlite3` calls run in a small thread pool owned by the store; each worker
thread has its own connection (a sqlite3 connection must not be used by two threads at
once). The file is in WAL mode, so readers never wait for the writer.

Locking a chat for a `conversation` block:

* inside the process, an `asyncio.Lock` per chat key, shared by every `SqliteStore`
  of this process that has the same file open;
* across processes, a POSIX byte-range lock (``fcntl.lockf``) on a sidecar file
  ``<database>-chatlocks``, one byte per chat at an offset derived from the key. The
  kernel releases it when a process dies, so a crash never leaves a chat locked.

The block's reads and writes are transactions of their own; the write is one
``BEGIN IMMEDIATE`` transaction (session, processed update id, erase: all or nothing).
The whole block is deliberately *not* one ``BEGIN IMMEDIATE`` transaction: SQLite has a
single writer lock per file, so holding it while the bot talks to Telegram would make
every other chat wait. As a last line of defence (for platforms or file systems where
byte-range locks do not work) the write also checks that nobody else wrote the chat
since it was read, and refuses to commit if someone did.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import json
import logging
import os
import secrets
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote

from bot.engine.session import Session
from bot.store._common import (
    HASH_KEY_SECRET_NAME,
    Clock,
    KeyedLocks,
    PruneSchedule,
    SessionRow,
    chat_hash,
    dump_json,
    read_session,
    session_row,
    to_utc,
    utc_now,
)
from bot.store.base import Change, Conversation, Reminder, Store, StoreUnavailable
from bot.store.sql import Dialect, Statements, erase_parameters, pending_migrations, schema_version

if sys.platform != "win32":
    import fcntl

log = logging.getLogger("bot.store.sqlite")

T = TypeVar("T")

# What differs from PostgreSQL; everything else is in bot/store/sql.py.
SQLITE = Dialect(
    name="sqlite",
    types={
        "text": "TEXT",
        "json": "TEXT",
        "time": "TEXT",
        "bytes": "BLOB",
        "int": "INTEGER",
        "bigint": "INTEGER",
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
    },
    placeholder="?",
)
SQL = Statements.for_dialect(SQLITE)

_SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")


def parse_sqlite_url(url: str) -> tuple[str, dict[str, str]]:
    """Split ``sqlite:///relative/path`` or ``sqlite:////abs/path`` (optionally with
    ``?synchronous=normal``) into the file path and the query options."""
    prefix = "sqlite:///"
    if url[: len(prefix)].lower() != prefix:
        raise ValueError("a SQLite URL looks like sqlite:///relative/path or sqlite:////abs/path")
    rest, _, query = url[len(prefix) :].partition("?")
    path = unquote(rest)
    if not path or path == ":memory:" or path.endswith("/"):
        raise ValueError("a SQLite URL needs a file path (in-memory databases are not supported)")
    options = {key: values[-1] for key, values in parse_qs(query).items()}
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ValueError(f"unknown SQLite URL option(s): {', '.join(sorted(unknown))}")
    return path, options


def _ts(value: datetime) -> str:
    """A datetime as the fixed-width UTC text the schema stores."""
    return to_utc(value).isoformat(timespec="microseconds")


def _from_ts(text: str) -> datetime:
    return to_utc(datetime.fromisoformat(text))


def _lock_offset(chat_key: str) -> int:
    # 62 bits: fits in a signed 64-bit off_t with room to spare; two chats sharing a
    # byte is practically impossible.
    digest = hashlib.blake2b(chat_key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2


class _ChatFileLocks:
    """Cross-process per-chat locks: POSIX byte-range locks on one sidecar file.

    POSIX locks belong to the process, not the file descriptor: two lockers in one
    process never exclude each other, and closing *any* descriptor of the file drops
    all of the process's locks on it. Hence one instance per file per process (see
    `_SharedFile`), used behind the in-process `KeyedLocks`.
    """

    def __init__(self, path: str) -> None:
        self._fd: int | None = None
        if sys.platform != "win32":
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @asynccontextmanager
    async def hold(self, chat_key: str) -> AsyncIterator[None]:
        """Hold `chat_key`'s byte until the block ends; polls, so waiting is cancellable."""
        if sys.platform == "win32" or self._fd is None:
            # No byte-range locks: the write-time check in `_finish` still refuses
            # to commit over another process's write.
            yield
            return
        fd, offset = self._fd, _lock_offset(chat_key)
        delay = 0.001
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset, os.SEEK_SET)
                break
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise StoreUnavailable("could not lock the chat") from exc
            # Another process holds this chat; it is rare and short, so polling with
            # backoff is simpler than a blocking call in a thread (which could not be
            # cancelled and might take the lock after its caller gave up).
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset, os.SEEK_SET)

    def close(self) -> None:
        """Close the lock file (which releases this process's locks on it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class _SharedFile:
    """What every `SqliteStore` of this process that has one file open must share."""

    chat_locks: KeyedLocks
    file_locks: _ChatFileLocks
    # Serialises this process's write transactions, so they queue here instead of
    # meeting in SQLite's busy handler, which sleeps in steps of milliseconds.
    write_mutex: threading.Lock = field(default_factory=threading.Lock)
    refs: int = 0


_SHARED: dict[str, _SharedFile] = {}
_SHARED_GUARD = threading.Lock()


def _acquire_shared(path: str) -> tuple[str, _SharedFile]:
    key = os.path.realpath(path)
    with _SHARED_GUARD:
        shared = _SHARED.get(key)
        if shared is None:
            shared = _SHARED[key] = _SharedFile(KeyedLocks(), _ChatFileLocks(key + "-chatlocks"))
        shared.refs += 1
        return key, shared


def _release_shared(key: str) -> None:
    with _SHARED_GUARD:
        shared = _SHARED.get(key)
        if shared is None:
            return
        shared.refs -= 1
        if shared.refs == 0:
            del _SHARED[key]
            shared.file_locks.close()


@contextmanager
def _transaction(conn: sqlite3.Connection, *, immediate: bool) -> Iterator[None]:
    """A transaction on an autocommit-mode connection: committed at the end of the
    block, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error as exc:  # the original error matters more
                log.warning("rollback failed: %s", type(exc).__name__)
        raise


async def _wait_out(future: asyncio.Future[Any]) -> None:
    """Wait until `future` is done, even if cancelled meanwhile."""
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            continue
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not warn about it


class SqliteStore(Store):
    """Sessions and the rest in one SQLite file.

    :param url: ``sqlite:///relative/path`` (relative to the working directory) or
        ``sqlite:////abs/path``; the parent folder is created. Option
        ``?synchronous=normal`` trades durability of the last commits on power loss
        (not on a crash) for speed; the default ``full`` makes a committed update
        durable before Telegram is told it was handled.
    :param hash_key: secret for the HMAC of chat keys in events (EVENT_HASH_KEY, read
        by bot/config.py). Default: a random key generated once and kept in the database
        (table ``store_secrets``). Changing it unlinks existing events from their chats
        (``/forget`` can no longer find them).
    :param clock: returns the current time (tests pass a fake one); default UTC now.
    :param busy_timeout: seconds to wait for another process's write lock before
        giving up with `StoreUnavailable`.
    :param workers: threads (each with its own connection) running the blocking calls.
    """

    def __init__(
        self,
        url: str,
        *,
        hash_key: bytes | None = None,
        clock: Clock | None = None,
        busy_timeout: float = 5.0,
        workers: int = 4,
    ) -> None:
        self.path, options = parse_sqlite_url(url)
        synchronous = options.get("synchronous", "full").upper()
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS).lower()}")
        self._synchronous = synchronous
        self._hash_key = hash_key
        self._clock = clock or utc_now
        self._busy_timeout = busy_timeout
        self._workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._shared_key = ""
        self._shared: _SharedFile | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_guard = threading.Lock()
        self._prune_schedule = PruneSchedule()

    # -- threads and connections -------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; every transaction is an
        # explicit BEGIN, so what is atomic is visible in the code.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreUnavailable(f"SQLite refused WAL mode (journal_mode={mode})")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            # /forget must not leave the erased rows' bytes in free pages of the file.
            conn.execute("PRAGMA secure_delete = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        """This worker thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._connections_guard:
                self._connections.append(conn)
        return conn

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` in a worker thread, driver errors made StoreUnavailable."""
        try:
            return fn(self._connection(), *args)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite failed: {type(exc).__name__}: {exc}") from exc

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        executor = self._executor
        if executor is None:
            raise RuntimeError("the store is not open: await store.open() first")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(executor, functools.partial(self._call, fn, *args))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # A thread cannot be interrupted. Wait until it is done before letting the
            # cancellation through, so a chat lock is never released while a write
            # for that chat may still commit.
            await _wait_out(future)
            raise

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Create the folder and file if needed, apply missing migrations, start threads."""
        if self._executor is not None:
            return
        try:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
            self._shared_key, self._shared = _acquire_shared(self.path)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the SQLite file's folder: {exc}") from exc
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="sqlite-store")
        try:
            applied, version, hash_key = await self._run(self._migrate, self._hash_key)
            self._hash_key = hash_key
            log.info("SQLite store open, schema version %d (%d migration(s) applied)", version, applied)
            await self._maybe_prune()
        except BaseException:
            await self.close()
            raise

    def _migrate(self, conn: sqlite3.Connection, hash_key: bytes | None) -> tuple[int, int, bytes]:
        # BEGIN IMMEDIATE takes the write lock first, so two processes starting at once
        # migrate one after the other; the second finds nothing left to do.
        with self._write_lock(), _transaction(conn, immediate=True):
            conn.execute(SQL.create_migrations_table)
            done = {row[0] for row in conn.execute(SQL.applied_versions)}
            pending = pending_migrations(done)
            for version, _ in pending:
                for statement in SQL.migrations[version - 1]:
                    conn.execute(statement)
                conn.execute(SQL.record_migration, (version, _ts(self._clock())))
            applied, newest = len(pending), schema_version(done)
            if hash_key is None:
                conn.execute(SQL.keep_secret, (HASH_KEY_SECRET_NAME, secrets.token_bytes(32)))
                row = conn.execute(SQL.read_secret, (HASH_KEY_SECRET_NAME,)).fetchone()
                hash_key = bytes(row[0])
        return applied, newest, hash_key

    async def close(self) -> None:
        """Stop the threads and close every connection; the store can be opened again."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True)
        with self._connections_guard:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()
        if self._shared is not None:
            self._shared = None
            _release_shared(self._shared_key)

    async def ping(self) -> bool:
        """True when the file can be read."""
        try:
            await self._run(lambda conn: conn.execute("SELECT 1").fetchone())
        except (StoreUnavailable, RuntimeError):
            return False
        return True

    # -- conversations -----------------------------------------------------------

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        shared = self._shared
        if shared is None:
            raise RuntimeError("the store is not open: await store.open() first")
        with shared.write_mutex:
            yield

    @asynccontextmanager
    async def conversation(self, chat_key: str, update_id: int | None = None) -> AsyncIterator[Conversation]:
        """Lock `chat_key` (in this process and across processes), load its session,
        and on a clean exit commit what was saved or erased, with `update_id`."""
        shared = self._shared
        if shared is None:
            raise RuntimeError("the store is not open: await store.open() first")
        async with shared.chat_locks.hold(chat_key), shared.file_locks.hold(chat_key):
            log.debug("conversation on chat %s", chat_key)
            raw, seen_at, duplicate = await self._run(self._begin, chat_key, update_id)
            session, damaged = read_session(raw) if raw is not None else (None, False)
            conv = Conversation(chat_key=chat_key, session=session, duplicate=duplicate, damaged=damaged)
            # An exception from the block propagates from here: nothing was written.
            yield conv
            if duplicate or (conv.change is Change.NOTHING and update_id is None):
                return  # nothing to write: do not queue for the write lock
            row = session_row(conv.saved) if conv.saved is not None else None
            data = dump_json(row.data) if row is not None else None
            hashed = chat_hash(self._hash_key, chat_key) if conv.change is Change.ERASE else None
            await self._run(self._finish, chat_key, update_id, seen_at, row, data, hashed)
            await self._maybe_prune()

    def _begin(
        self, conn: sqlite3.Connection, chat_key: str, update_id: int | None
    ) -> tuple[str | None, str | None, bool]:
        # One read transaction: the session and the duplicate check see one snapshot.
        with _transaction(conn, immediate=False):
            found = conn.execute("SELECT data, updated_at FROM sessions WHERE chat_key = ?", (chat_key,)).fetchone()
            duplicate = (
                update_id is not None and conn.execute(SQL.seen_update, (chat_key, update_id)).fetchone() is not None
            )
        if found is None:
            return None, None, duplicate
        return found[0], found[1], duplicate

    def _finish(
        self,
        conn: sqlite3.Connection,
        chat_key: str,
        update_id: int | None,
        seen_at: str | None,
        row: SessionRow | None,
        data: str | None,
        hashed: str | None,
    ) -> None:
        now = _ts(self._clock())
        with self._write_lock(), _transaction(conn, immediate=True):
            current = conn.execute("SELECT updated_at FROM sessions WHERE chat_key = ?", (chat_key,)).fetchone()
            # Cannot happen while the byte-range locks work; if they do not (a network
            # file system), refuse to overwrite a newer write made from the same old state.
            # A row that vanished (purge_idle) is simply written again.
            if current is not None and current[0] != seen_at:
                raise StoreUnavailable("the chat was changed by another process during the block; nothing committed")
            if hashed is not None:
                for statement, parameters in zip(SQL.erase_chat, erase_parameters(chat_key, hashed), strict=True):
                    conn.execute(statement, parameters)
                return
            if row is not None:
                conn.execute(
                    SQL.upsert_session, (chat_key, data, row.flow, row.state, row.locale, row.version, now, now)
                )
            if update_id is not None:
                conn.execute(SQL.record_update, (chat_key, update_id, now))

    async def _maybe_prune(self) -> None:
        """Forget processed update ids older than the retention, at most once an interval."""
        cutoff = self._prune_schedule.cutoff(self._clock())
        if cutoff is None:
            return
        try:
            await self._run(self._prune, _ts(cutoff))
        except StoreUnavailable as exc:
            # Housekeeping: never fail the update that happened to trigger it.
            log.warning("could not prune processed update ids: %s", exc)

    def _prune(self, conn: sqlite3.Connection, cutoff: str) -> int:
        with self._write_lock(), _transaction(conn, immediate=True):
            deleted = conn.execute(SQL.prune_processed, (cutoff,)).rowcount
        if deleted:
            log.info("forgot %d processed update id(s) older than the retention", deleted)
        return deleted

    # -- the rest of the interface ---------------------------------------------

    async def load(self, chat_key: str) -> Session | None:
        """The stored session, or None when there is none or it cannot be read."""
        found = await self._run(lambda conn: conn.execute(SQL.load_session, (chat_key,)).fetchone())
        return read_session(found[0])[0] if found is not None else None

    async def record_event(self, name: str, chat_key: str, data: dict[str, Any]) -> None:
        """Count event `name`; the chat is stored only as its keyed hash."""
        values = (name, chat_hash(self._hash_key, chat_key), dump_json(data), _ts(self._clock()))

        def insert(conn: sqlite3.Connection) -> None:
            with self._write_lock(), _transaction(conn, immediate=True):
                conn.execute(SQL.insert_event, values)

        await self._run(insert)

    async def add_reminder(self, chat_key: str, due_at: datetime, payload: dict[str, Any]) -> int:
        """Plan a reminder; returns its id."""
        values = (chat_key, _ts(due_at), dump_json(payload))

        def insert(conn: sqlite3.Connection) -> int:
            with self._write_lock(), _transaction(conn, immediate=True):
                return int(conn.execute(SQL.insert_reminder, values).fetchone()[0])

        return await self._run(insert)

    async def due_reminders(self, now: datetime, limit: int = 100) -> list[Reminder]:
        """Unsent reminders due at `now` or earlier, oldest first."""
        rows = await self._run(lambda conn: conn.execute(SQL.due_reminders, (_ts(now), limit)).fetchall())
        return [Reminder(id=r[0], chat_key=r[1], due_at=_from_ts(r[2]), payload=_json_object(r[3])) for r in rows]

    async def purge_idle(self, idle_since: datetime) -> int:
        """Delete sessions last written before `idle_since`; returns how many."""
        cutoff = _ts(idle_since)

        def purge(conn: sqlite3.Connection) -> int:
            with self._write_lock(), _transaction(conn, immediate=True):
                return conn.execute(SQL.purge_idle, (cutoff,)).rowcount

        deleted = await self._run(purge)
        self._prune_schedule.now_due()
        await self._maybe_prune()
        log.info("purged %d idle session(s)", deleted)
        return deleted

    async def stats(self) -> dict[str, int]:
        """``{"active_conversations": n, "event:<name>": count, ...}``."""

        def query(conn: sqlite3.Connection) -> dict[str, int]:
            with _transaction(conn, immediate=False):
                result = {"active_conversations": conn.execute(SQL.count_sessions).fetchone()[0]}
                for name, count in conn.execute(SQL.count_events):
                    result[f"event:{name}"] = count
            return result

        return await self._run(query)


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}
