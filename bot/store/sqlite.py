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
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote

from bot.engine.session import Session
from bot.store._common import (
    HASH_KEY_SECRET_NAME,
    OWNER_TIMEOUT,
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

#: Files the store creates (the database, its -wal, -shm and -chatlocks): owner only.
#: SQLite gives -wal and -shm the database file's mode.
FILE_MODE = 0o600

#: After an erase, `PRAGMA wal_checkpoint(TRUNCATE)` waits this long for readers per
#: try (not the full busy timeout: it holds this process's writers meanwhile).
_CHECKPOINT_WAIT_MS = 100
_CHECKPOINT_TRIES = 5


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


def _is_busy(exc: sqlite3.Error) -> bool:
    """True for "database is locked" / "busy": another connection holds a lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _retry_busy(fn: Callable[[], T], timeout: float) -> T:
    """`fn()`, tried again with backoff while SQLite says busy, for up to `timeout` s.

    For opening only: when connections meet in a way SQLite takes for a deadlock (two
    of them switching a new file to WAL at once), it returns SQLITE_BUSY at once
    without calling the busy handler, so ``busy_timeout`` alone does not make
    concurrent openers wait (measured: about 1 opener in 40 failed within 1 ms).
    """
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def connect(path: str, *, busy_timeout: float, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection to the database file at `path` as the store uses it: WAL mode,
    `synchronous`, secure_delete, autocommit (every transaction an explicit BEGIN), and
    `busy_timeout` seconds of waiting for other connections' locks, including while
    setting up, so processes opening one file at the same time wait for each other."""
    return _retry_busy(lambda: _try_connect(path, busy_timeout, synchronous), busy_timeout)


def _try_connect(path: str, busy_timeout: float, synchronous: str) -> sqlite3.Connection:
    # timeout= installs the busy handler as the connection opens, before any
    # statement. isolation_level=None: no implicit transactions.
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        # Two connections switching a new file to WAL at once deadlock, and one gets
        # SQLITE_BUSY at once, without its busy handler: switch only a file that is
        # not in WAL mode yet (the mode is persistent), and retry (see `connect`).
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreUnavailable(f"SQLite refused WAL mode (journal_mode={mode})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        # /forget must not leave the erased rows' bytes in free pages of the file.
        conn.execute("PRAGMA secure_delete = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only, if it does not exist yet
    (sqlite3 would create it 0644; an existing file keeps its mode)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)


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
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)

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


@dataclass(frozen=True)
class _Commit:
    """What a conversation block writes when it ends, ready for the write transaction."""

    chat_key: str
    update_id: int | None
    # The session's updated_at as the block read it (None: no row then).
    seen_at: str | None
    row: SessionRow | None
    data: str | None  # row.data as JSON
    # Set for an erase (the events' chat hash): then nothing else is written.
    erase_hash: str | None
    outbox: tuple[str, ...]  # payloads as JSON, in order
    events: tuple[tuple[str, str, str], ...]  # (name, chat hash, data as JSON)
    reminders: tuple[ReminderChange, ...] = ()
    hashed: str = ""  # the chat's event hash, when a reminder change may count an event


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
    :param owner_timeout: seconds after its last `beat` that a sender's outbox claims
        stop counting (see `Store.beat`).
    """

    def __init__(
        self,
        url: str,
        *,
        hash_key: bytes | None = None,
        clock: Clock | None = None,
        busy_timeout: float = 5.0,
        workers: int = 4,
        owner_timeout: float = OWNER_TIMEOUT,
    ) -> None:
        self.path, options = parse_sqlite_url(url)
        synchronous = options.get("synchronous", "full").upper()
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS).lower()}")
        self._synchronous = synchronous
        self._hash_key = hash_key
        self._clock = clock or utc_now
        self._busy_timeout = busy_timeout
        self._owner_timeout = timedelta(seconds=owner_timeout)
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
        return connect(self.path, busy_timeout=self._busy_timeout, synchronous=self._synchronous)

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
            _create_private(self.path)
            self._shared_key, self._shared = _acquire_shared(self.path)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the SQLite file or its folder: {exc}") from exc
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="sqlite-store")
        try:
            # Retried like connecting: a BEGIN on a file another process is still
            # setting up can be refused without waiting.
            applied, version, hash_key = await self._run(
                lambda conn: _retry_busy(lambda: self._migrate(conn, self._hash_key), self._busy_timeout)
            )
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
            commit = self._commit_for(conv, update_id, seen_at)
            if commit is None:
                return  # nothing to write: do not queue for the write lock
            await self._run(self._finish, commit)
            await self._maybe_prune()

    def _commit_for(self, conv: Conversation, update_id: int | None, seen_at: str | None) -> _Commit | None:
        """What the block's end writes, prepared outside the write lock; None for nothing."""
        if conv.duplicate:
            return None
        key = conv.chat_key
        if conv.change is Change.ERASE:
            # Nothing queued in an erasing block is kept: each row would name the chat.
            return _Commit(key, None, seen_at, None, None, chat_hash(self._hash_key, key), (), ())
        if (
            conv.change is Change.NOTHING
            and update_id is None
            and not conv.outbox
            and not conv.events
            and not conv.reminders
        ):
            return None
        row = session_row(conv.saved) if conv.saved is not None else None
        hashed = chat_hash(self._hash_key, key) if conv.events or conv.reminders else ""
        return _Commit(
            chat_key=key,
            update_id=update_id,
            seen_at=seen_at,
            row=row,
            data=dump_json(row.data) if row is not None else None,
            erase_hash=None,
            outbox=tuple(dump_json(payload) for payload in conv.outbox),
            events=tuple((name, hashed, dump_json(data)) for name, data in conv.events),
            reminders=tuple(conv.reminders),
            hashed=hashed,
        )

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

    def _finish(self, conn: sqlite3.Connection, commit: _Commit) -> None:
        now = _ts(self._clock())
        key = commit.chat_key
        with self._write_lock():
            with _transaction(conn, immediate=True):
                current = conn.execute("SELECT updated_at FROM sessions WHERE chat_key = ?", (key,)).fetchone()
                # Cannot happen while the byte-range locks work; if they do not (a network
                # file system), refuse to overwrite a newer write made from the same old state.
                # A row that vanished (purge_idle) is simply written again.
                if current is not None and current[0] != commit.seen_at:
                    raise StoreUnavailable(
                        "the chat was changed by another process during the block; nothing committed"
                    )
                if commit.erase_hash is not None:
                    for statement, parameters in zip(
                        SQL.erase_chat, erase_parameters(key, commit.erase_hash), strict=True
                    ):
                        conn.execute(statement, parameters)
                else:
                    row = commit.row
                    if row is not None:
                        conn.execute(
                            SQL.upsert_session,
                            (key, commit.data, row.flow, row.state, row.locale, row.version, now, now),
                        )
                    if commit.update_id is not None:
                        conn.execute(SQL.record_update, (key, commit.update_id, now))
                    # executemany runs them in order: ids ascend in the order queued.
                    if commit.outbox:
                        conn.executemany(SQL.insert_outbox, ((key, payload, now) for payload in commit.outbox))
                    if commit.events:
                        conn.executemany(SQL.insert_event, ((*event, now) for event in commit.events))
                    for change in commit.reminders:
                        _change_reminders(conn, key, change, commit.hashed, now)
            if commit.erase_hash is not None:
                self._truncate_wal(conn)

    def _truncate_wal(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL into the file and cut it to zero bytes, so the erased rows'
        old versions do not linger in it (secure_delete already zeroed them in the
        pages). Best effort: the erase is committed whatever happens here; a later
        write would reuse the WAL from its start but leave older frames behind it."""
        try:
            conn.execute(f"PRAGMA busy_timeout = {_CHECKPOINT_WAIT_MS}")
            try:
                for attempt in range(_CHECKPOINT_TRIES):
                    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    if not busy:
                        return
                    time.sleep(0.01 * 2**attempt)
                log.warning("after an erase the WAL could not be truncated (readers kept it busy)")
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            log.warning("after an erase the WAL could not be truncated: %s", type(exc).__name__)

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
            conn.execute(SQL.prune_owner_beats, (cutoff,))
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

    async def add_reminder(
        self, chat_key: str, due_at: datetime, payload: dict[str, Any], kind: str = "monthly"
    ) -> int:
        """Plan a reminder outside a conversation; returns its id."""
        values = (chat_key, kind, _ts(due_at), dump_json(payload))

        def insert(conn: sqlite3.Connection) -> int:
            with self._write_lock(), _transaction(conn, immediate=True):
                return int(conn.execute(SQL.insert_reminder, values).fetchone()[0])

        return await self._run(insert)

    async def fire_reminders(self, now: datetime, limit: int, fire: Fire) -> Fired:
        """Fire up to `limit` due rows in one write transaction (see `Store.fire_reminders`).

        SQLite has one writer, so there is nothing to skip: rows and sessions are read
        first, `fire` runs on the event loop (never inside the write lock), and the write
        transaction applies a row's firing only if the row is still due as read and a
        moved conversation is unchanged since; otherwise another process fired it, or
        the person answered meanwhile, and the row waits for the next round.
        """
        due = await self._run(self._due_reminders, _ts(now), limit)
        planned = []
        for row, (raw, seen_at) in due:
            session = read_session(raw)[0] if raw is not None else None
            planned.append((row, seen_at, fire(row, session)))
        if not planned:
            return Fired(0)
        return await self._run(self._apply_firings, planned)

    def _due_reminders(
        self, conn: sqlite3.Connection, now: str, limit: int
    ) -> list[tuple[Reminder, tuple[str | None, str | None]]]:
        with _transaction(conn, immediate=False):  # one snapshot for rows and sessions
            rows = [_reminder(r) for r in conn.execute(SQL.due_reminders, (now, limit)).fetchall()]
            sessions = {}
            for key in {row.chat_key for row in rows}:
                found = conn.execute("SELECT data, updated_at FROM sessions WHERE chat_key = ?", (key,)).fetchone()
                sessions[key] = (found[0], found[1]) if found is not None else (None, None)
        return [(row, sessions[row.chat_key]) for row in rows]

    def _apply_firings(self, conn: sqlite3.Connection, planned: list[tuple[Reminder, str | None, Firing]]) -> Fired:
        now = _ts(self._clock())
        woken: dict[str, None] = {}
        fired = 0
        with self._write_lock(), _transaction(conn, immediate=True):
            for row, seen_at, firing in planned:
                key = row.chat_key
                if firing.session is not None:
                    current = conn.execute("SELECT updated_at FROM sessions WHERE chat_key = ?", (key,)).fetchone()
                    if current is None or current[0] != seen_at:
                        continue  # the conversation moved on since it was read
                if firing.kind is None:
                    done = conn.execute(SQL.retire_reminder, (row.id, _ts(row.due_at))).rowcount
                else:
                    assert firing.due_at is not None
                    values = (firing.kind, _ts(firing.due_at), dump_json(firing.payload or {}), row.id, _ts(row.due_at))
                    done = conn.execute(SQL.advance_reminder, values).rowcount
                if done != 1:
                    continue  # fired by another process, or changed by its chat, since it was read
                fired += 1
                if firing.session is not None:
                    saved = session_row(firing.session)
                    conn.execute(
                        SQL.upsert_session,
                        (key, dump_json(saved.data), saved.flow, saved.state, saved.locale, saved.version, now, now),
                    )
                conn.executemany(SQL.insert_outbox, ((key, dump_json(payload), now) for payload in firing.outbox))
                if firing.events:
                    hashed = chat_hash(self._hash_key, key)
                    conn.executemany(SQL.insert_event, ((name, hashed, "{}", now) for name in firing.events))
                if firing.outbox:
                    woken[key] = None
        return Fired(fired, tuple(woken))

    async def reminders(self, chat_key: str) -> list[Reminder]:
        """The chat's reminders and check-ins, soonest first."""
        rows = await self._run(lambda conn: conn.execute(SQL.chat_reminders, (chat_key,)).fetchall())
        return [_reminder(r) for r in rows]

    async def drop_reminders(self, chat_key: str) -> int:
        """Delete all of the chat's reminders and check-ins; how many there were."""

        def drop(conn: sqlite3.Connection) -> int:
            with self._write_lock(), _transaction(conn, immediate=True):
                return conn.execute(SQL.erase_chat[1], (chat_key,)).rowcount

        return await self._run(drop)

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

    async def events(self, since: datetime | None = None) -> list[EventRecord]:
        """Events recorded at `since` or later (all when None), oldest first."""
        if since is None:
            rows = await self._run(lambda conn: conn.execute(SQL.all_events).fetchall())
        else:
            cutoff = _ts(since)
            rows = await self._run(lambda conn: conn.execute(SQL.events_since, (cutoff,)).fetchall())
        return [
            EventRecord(name=r[0], chat_hash=r[1], data=_json_object(r[2]), created_at=_from_ts(r[3])) for r in rows
        ]

    async def probe_write(self) -> None:
        """Commit a write to the ``heartbeat`` table; `StoreUnavailable` when it fails
        (disk full, read-only file, write lock held past the busy timeout)."""
        values = ("probe", _ts(self._clock()))

        def beat(conn: sqlite3.Connection) -> None:
            with self._write_lock(), _transaction(conn, immediate=True):
                conn.execute(SQL.beat, values)

        await self._run(beat)

    # -- the outbox ----------------------------------------------------------------

    async def beat(self, owner: str) -> None:
        """Record that sender `owner` is alive now."""
        await self._write(SQL.beat, (owner_beat_name(owner), _ts(self._clock())))

    async def claim_outbox(self, chat_key: str, owner: str, lease: timedelta, limit: int = 50) -> list[OutboxMessage]:
        """Claim the chat's oldest unsent messages for `owner` (see `Store.claim_outbox`)."""
        now = self._clock()
        alive_since = now - self._owner_timeout
        parameters = claim_parameters(chat_key, owner, _ts(now), _ts(now + lease), _ts(alive_since), limit)

        def claim(conn: sqlite3.Connection) -> list[Any]:
            # The write lock makes the check and the claim one step across processes.
            with self._write_lock(), _transaction(conn, immediate=True):
                return conn.execute(SQL.claim_outbox, parameters).fetchall()

        rows = await self._run(claim)
        return sorted(
            (OutboxMessage(id=r[0], chat_key=r[1], payload=_json_object(r[2]), attempts=r[3]) for r in rows),
            key=lambda message: message.id,
        )

    async def mark_sent(self, *message_ids: int) -> None:
        """Delete the messages from the outbox, in one transaction."""
        rows = [(message_id,) for message_id in message_ids]

        def delete(conn: sqlite3.Connection) -> None:
            with self._write_lock(), _transaction(conn, immediate=True):
                conn.executemany(SQL.delete_outbox, rows)

        if rows:
            await self._run(delete)

    async def defer_outbox(self, chat_key: str, until: datetime) -> None:
        """Release the chat's messages, nobody to claim them before `until`."""
        await self._write(SQL.defer_outbox, (_ts(until), chat_key))

    async def release_outbox(self, owner: str) -> int:
        """Give up `owner`'s claims; how many messages were released."""

        def release(conn: sqlite3.Connection) -> int:
            with self._write_lock(), _transaction(conn, immediate=True):
                return conn.execute(SQL.release_outbox, (owner,)).rowcount

        return await self._run(release)

    async def pending_chats(self, now: datetime, older_than: timedelta, limit: int = 100) -> list[str]:
        """Chats whose unsent messages nobody holds: unclaimed since `now - older_than`,
        whose lease or deferral ended by `now`, or whose owner stopped beating; oldest first."""
        parameters = pending_parameters(_ts(now - older_than), _ts(now), _ts(now - self._owner_timeout), limit)
        rows = await self._run(lambda conn: conn.execute(SQL.pending_chats, parameters).fetchall())
        return [r[0] for r in rows]

    async def _write(self, statement: str, parameters: tuple[Any, ...]) -> None:
        """One statement in its own write transaction."""

        def write(conn: sqlite3.Connection) -> None:
            with self._write_lock(), _transaction(conn, immediate=True):
                conn.execute(statement, parameters)

        await self._run(write)


def _reminder(row: Any) -> Reminder:
    """A `reminders` row (id, chat_key, kind, due_at, payload) as the interface's type."""
    return Reminder(id=row[0], chat_key=row[1], kind=row[2], due_at=_from_ts(row[3]), payload=_json_object(row[4]))


def _change_reminders(conn: sqlite3.Connection, key: str, change: ReminderChange, hashed: str, now: str) -> None:
    """Apply one of a conversation block's reminder changes, inside its transaction."""
    if isinstance(change, PlanReminder):
        if change.replaces:
            conn.execute(SQL.close_reminders, (key, change.kind)).fetchall()
        conn.execute(SQL.insert_reminder, (key, change.kind, _ts(change.due_at), dump_json(change.payload))).fetchall()
    elif isinstance(change, CloseReminders):
        closed = conn.execute(SQL.close_reminders, (key, change.kind)).fetchall()
        if closed and change.event is not None:
            conn.execute(SQL.insert_event, (change.event, hashed, "{}", now))
    elif isinstance(change, DropReminder):
        conn.execute(SQL.drop_reminder, (change.reminder_id, key))
    else:
        values = (_ts(change.due_at), dump_json(change.payload), change.reminder_id, key, _ts(change.was_due_at))
        if not conn.execute(SQL.move_reminder, values).fetchall():
            # The reminder loop fired it meanwhile: commit nothing, so the update is
            # applied again (Telegram delivers it again) to the row as it is now.
            raise StoreUnavailable("the reminder changed during the block; nothing committed")


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}
