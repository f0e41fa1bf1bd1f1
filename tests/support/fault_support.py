"""What the fault tests share: Telegram's redelivery, the replies a user should see
once, figures for the report, and the faults themselves (a full disk for one process,
a read-only PostgreSQL database).

The webhook processes, the stand-in Bot API and the databases come from
tests/support/durability_support.py and tg_harness.py; the cuttable TCP proxy from
tests/support/tcp_proxy.py.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.durability_support import (
    SECRET,
    Database,
    PostgresDatabase,
    Reply,
    SqliteDatabase,
    visible,
    wait_until,
)
from tests.support.tg_harness import Webhook, message_update, new_chat_id, start_webhook
from tests.support.tg_standin import StandIn

# The outbox's table (bot/store/sql.py): what is committed and not yet sent.
OUTBOX_TABLE = "outbox"


# --- Telegram's side: delivering an update until it is acknowledged ---------------------


@dataclass
class Delivery:
    """Every attempt Telegram made to deliver one update: HTTP status (0: no answer,
    the connection failed or timed out) and how long the attempt took, in seconds."""

    update: dict[str, Any]
    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    # When the first attempt started, for delays measured against the stand-in's clock.
    started: float = 0.0

    @property
    def acknowledged(self) -> bool:
        return bool(self.statuses) and self.statuses[-1] == 200


def post_once(hook: Webhook, update: dict[str, Any], timeout: float = 60) -> tuple[int, float]:
    """One POST as Telegram makes it, with a client of its own (threads may share a
    hook): the status (0 for no answer) and the seconds it took."""
    started = time.monotonic()
    try:
        with httpx.Client(timeout=timeout) as client:
            response = client.post(hook.url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        status = response.status_code
    except httpx.TransportError:
        status = 0
    return status, time.monotonic() - started


def deliver(
    hook: Webhook | Callable[[], Webhook],
    update: dict[str, Any],
    *,
    attempts: int = 50,
    pause: float = 0.2,
    timeout: float = 60,
    delivery: Delivery | None = None,
) -> Delivery:
    """Deliver `update` as Telegram does: POST it, and POST it again (after `pause`)
    while the answer is not 200, up to `attempts` times. `hook` may be a callable, read
    before each attempt (the process behind a URL can change while Telegram retries)."""
    delivery = delivery or Delivery(update)
    if not delivery.started:
        delivery.started = time.monotonic()
    for attempt in range(attempts):
        if attempt:
            time.sleep(pause)
        target = hook() if callable(hook) else hook
        status, seconds = post_once(target, update, timeout)
        delivery.statuses.append(status)
        delivery.seconds.append(seconds)
        if status == 200:
            break
    return delivery


def deliver_all(
    hook: Webhook | Callable[[], Webhook], updates: Sequence[dict[str, Any]], **options: Any
) -> list[Delivery]:
    """`deliver` each update, all at once (one thread each)."""
    with ThreadPoolExecutor(max(1, len(updates))) as pool:
        return list(pool.map(lambda update: deliver(hook, update, **options), updates))


def converse(hook: Webhook, chat_id: int, script: Iterable[str], **options: Any) -> list[Delivery]:
    """One user's messages, one after the other, each delivered until acknowledged
    (Telegram sends a chat's next update once the previous one is acknowledged)."""
    return [deliver(hook, message_update(chat_id, text), **options) for text in script]


def health_turns(hook: Webhook, status: int, timeout: float = 10.0) -> float | None:
    """Seconds until /healthz answers `status` (polled), None if it does not within
    `timeout`: a health check may keep its last probe's answer for a moment."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if hook.get("/healthz").status_code == status:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return None


# --- what the user sees ---------------------------------------------------------------------


def outbox_pending(database: Database, chat_ids: Iterable[int] | None = None) -> int:
    """Messages committed and not yet marked sent, of `chat_ids` or of every chat (0
    when the schema has no outbox: the code before it sent inside the request)."""
    if OUTBOX_TABLE not in database.tables():
        return 0
    if chat_ids is None:
        return database.count(OUTBOX_TABLE)
    keys = {f"tg:{chat}" for chat in chat_ids}
    return sum(1 for (key,) in database.query(f"SELECT chat_key FROM {OUTBOX_TABLE}") if key in keys)


def outbox_rows(database: Database, chat_ids: Iterable[int]) -> list[str]:
    """The chats' outbox rows as text (id, owner, hold, attempts; no payload), for a
    failure message."""
    if OUTBOX_TABLE not in database.tables():
        return []
    keys = {f"tg:{chat}" for chat in chat_ids}
    rows = database.query(f"SELECT id, chat_key, owner, hold_until, attempts, created_at FROM {OUTBOX_TABLE}")
    return [
        f"id={id_} {key} owner={owner} hold_until={hold} attempts={attempts} created={created}"
        for id_, key, owner, hold, attempts, created in rows
        if key in keys
    ]


def settle(standin: StandIn, database: Database, chats: dict[int, int], timeout: float = 15.0) -> None:
    """Wait until every chat has at least its expected number of messages and nothing
    of theirs is left in the outbox: nothing is on its way any more, so what the
    stand-in holds is everything these users will see (a late duplicate would show)."""
    deadline = time.monotonic() + timeout
    while not all(len(standin.messages(chat)) >= count for chat, count in chats.items()) or outbox_pending(
        database, chats
    ):
        if time.monotonic() > deadline:
            short = {chat: f"{len(standin.messages(chat))}/{count}" for chat, count in chats.items()}
            missing = {chat: seen for chat, seen in short.items() if seen.split("/")[0] != seen.split("/")[1]}
            rows = "\n  ".join(outbox_rows(database, chats)) or "none"
            raise AssertionError(
                f"not settled after {timeout:.0f} s: messages seen/due {missing or 'all there'}; outbox rows:\n  {rows}"
            )
        time.sleep(0.02)


@dataclass(frozen=True)
class Transcript:
    """What a user sees when nothing fails: the replies to each of their messages."""

    turns: list[list[Reply]]

    @property
    def replies(self) -> list[Reply]:
        """Every reply, in order."""
        return [reply for turn in self.turns for reply in turn]


def reference(hook: Webhook, standin: StandIn, database: Database, script: Sequence[str]) -> Transcript:
    """`script` in a fresh chat while nothing fails, each update acknowledged and its
    replies delivered before the next one: what every user of the script should see."""
    chat_id = new_chat_id()
    turns: list[list[Reply]] = []
    for text in script:
        seen = len(standin.messages(chat_id))
        delivery = deliver(hook, message_update(chat_id, text), attempts=1)
        assert delivery.acknowledged, f"the reference chat got {delivery.statuses} for {text!r}"
        wait_until(lambda: outbox_pending(database) == 0, "the reference reply to be sent")
        turns.append(visible(standin.messages(chat_id)[seen:]))
    assert all(turns), f"a reference turn got no reply: {turns}"
    return Transcript(turns)


def extra_messages(standin: StandIn, chat_id: int, expected: Sequence[Reply]) -> int:
    """Messages beyond what the user should have seen (each a duplicate, or worse)."""
    return len(standin.messages(chat_id)) - len(expected)


def assert_exactly_once(standin: StandIn, chat_id: int, expected: Sequence[Reply]) -> None:
    """The chat shows exactly `expected`: every reply, in order, each once."""
    seen = visible(standin.messages(chat_id))
    if seen != list(expected):
        extra = len(seen) - len(expected)
        lines = "\n".join(f"  {text[:60]!r}" for text, _ in seen)
        raise AssertionError(f"chat {chat_id}: {extra:+d} messages against the {len(expected)} due; saw\n{lines}")


# --- figures for the report -----------------------------------------------------------------


# The `figures` fixture: record(name, value).
Record = Callable[[str, object], None]


class Figures:
    """Named measurements of one test session, printed at its end (the closing note of
    issue 11 quotes them) and attached to each test's report as user properties."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, test: str, name: str, value: object) -> None:
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        self.rows.append((test, name, text))


def seconds_summary(values: Sequence[float]) -> str:
    """Median and max, to two decimals (e.g. "median 0.05 s, max 0.12 s")."""
    if not values:
        return "none"
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"


# --- a full disk for one process (SQLite) ---------------------------------------------------


def database_files(database: SqliteDatabase) -> list[Path]:
    """The SQLite database and its write-ahead log, as they are now."""
    return [path for path in (database.path, Path(f"{database.path}-wal")) if path.exists()]


@contextmanager
def disk_full(pid: int, database: SqliteDatabase) -> Iterator[int]:
    """No file of process `pid` can grow past the database's files as they are now.

    RLIMIT_FSIZE refuses a write at or beyond the limit (EFBIG); SQLite appends every
    commit to the WAL and checkpoints into the database file, so with the limit at the
    smaller of their sizes no commit can succeed, while reads go on: a full disk, for
    this process only. (Tests run as root, so a read-only file would not stop them.)
    The process must ignore SIGXFSZ, or the first refused write kills it; CPython does
    at start-up. Yields the limit; the block's end lifts it."""
    assert ignores_signal(pid, signal.SIGXFSZ), "the process would be killed by SIGXFSZ"
    limit = min(path.stat().st_size for path in database_files(database))
    before = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, before[1]))
    try:
        yield limit
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, before)


def ignores_signal(pid: int, signum: int) -> bool:
    """Whether process `pid` ignores `signum` (from /proc/<pid>/status, SigIgn)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def checkpoint(database: SqliteDatabase) -> None:
    """Fold the WAL into the database file, so the sizes the disk fills at are settled."""
    with closing(sqlite3.connect(database.path, timeout=30)) as conn:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


# --- webhook processes whose output goes through a pipe ------------------------------------


def start_piped_webhook(env: dict[str, str], folder: Path) -> Webhook:
    """`start_webhook`, the process's output through a pipe copied into webhook.log (as
    in a container, where stdout is a pipe): a file-size limit set on the process then
    stops its database writes, not its logging."""
    read_end, write_end = os.pipe()
    log_path = folder / "webhook.log"

    def copy() -> None:
        with os.fdopen(read_end, "rb") as source, log_path.open("ab") as target:
            while chunk := source.read1(65536):
                target.write(chunk)
                target.flush()

    log_path.touch()
    threading.Thread(target=copy, name="webhook-log", daemon=True).start()
    try:
        return start_webhook(env, folder, output=write_end)
    finally:
        os.close(write_end)  # the child holds its own copy: EOF when it exits


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- a read-only PostgreSQL database --------------------------------------------------------


class PostgresFaults:
    """Faults of one test database, done from an administrator's connection to the
    server's maintenance database (TEST_DATABASE_URL), never from the test database."""

    def __init__(self, admin_url: str, database: PostgresDatabase) -> None:
        self.admin_url = admin_url
        self.database = database

    def _admin(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as admin:
            for sql, params in statements:
                admin.execute(sql, params)

    def read_only(self, on: bool) -> None:
        """Make every new transaction of the database read-only (or writable again), and
        end its current sessions so none keeps the old setting; the test's own
        connection is spared."""
        name = self.database.dbname
        setting = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
        self._admin(
            (f'ALTER DATABASE "{name}" {setting}', ()),
            (
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                (name, self.database.backend_pid),
            ),
        )

    def sessions(self) -> int:
        """Sessions connected to the database now, the test's own excluded."""
        rows = self.database.query(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(rows[0][0])
