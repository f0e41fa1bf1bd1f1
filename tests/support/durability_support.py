"""What the durability tests share: a stand-in Bot API that can hold a reply in flight,
databases to point webhook processes at (a SQLite file, or a fresh PostgreSQL database),
webhook processes started, killed and restarted on them, and an in-order replay of
events through the pure engine that renders what the user should have seen.

The Telegram harness (tests/support/tg_harness.py) is reused as it is: the real `python -m bot
webhook` process, real update JSON over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from telegram import Bot

from bot.channels.telegram.adapter import TelegramAdapter
from bot.channels.telegram.sender import TelegramSender
from bot.conversations import Advisor
from bot.engine.commands import parse_command
from bot.engine.engine import Engine
from bot.engine.events import Event, Said
from bot.engine.session import Session
from bot.i18n.catalog import Localizer
from bot.store._common import chat_hash
from bot.store.sqlite import SqliteStore
from tests.support.tg_harness import (
    SECRET,
    TOKEN,
    TgUser,
    Webhook,
    free_port,
    start_webhook,
    stop_webhook,
    webhook_env,
)
from tests.support.tg_standin import BadRequest, StandIn, parse_html

__all__ = [
    "PG_SKIP_REASON",
    "SECRET",
    "TOKEN",
    "Bots",
    "Database",
    "FaultyStandIn",
    "Gate",
    "Posted",
    "PostgresDatabase",
    "SqliteDatabase",
    "Texts",
    "Webhook",
    "copy_dialogs",
    "event_for",
    "handled",
    "metrics",
    "post_in_background",
    "replace_once",
    "replay",
    "visible",
    "wait_until",
]

PG_SKIP_REASON = "TEST_DATABASE_URL not set: PostgreSQL tests skipped"

Reply = tuple[str, list[tuple[str, str]]]  # visible text, (label, callback data) of each button


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll `predicate` until it holds; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


# --- the stand-in Bot API, with a reply that can be held in flight ------------------------


@dataclass
class Gate:
    """Holds the next sendMessage of one chat until `release` (see `FaultyStandIn.hold_next_send`)."""

    entered: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    refuse: bool = False

    def wait_entered(self, timeout: float = 15.0) -> None:
        """Block until the held call has arrived at the stand-in."""
        if not self.entered.wait(timeout):
            pytest.fail("the held sendMessage never arrived at the stand-in")

    def release(self, *, refuse: bool = False) -> None:
        """Let the held call go on; with `refuse`, answer it with an error and record nothing
        (its sender is dead: the user never sees that reply)."""
        self.refuse = refuse
        self.released.set()


class FaultyStandIn(StandIn):
    """The stand-in Bot API (tg_standin), plus one fault: the next sendMessage to a chat is held
    (the bot is waiting for Telegram's answer, inside its conversation block) until the
    test releases it. That is how a test catches an update in the middle of being handled."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self._gates: dict[int, Gate] = {}
        self._all_gates: list[Gate] = []

    def hold_next_send(self, chat_id: int) -> Gate:
        """Hold the next sendMessage to `chat_id`; later ones pass."""
        gate = Gate()
        with self._lock:
            self._gates[chat_id] = gate
            self._all_gates.append(gate)
        return gate

    async def _api_sendmessage(self, params: dict[str, Any]) -> Any:
        chat_id = params.get("chat_id")
        with self._lock:
            gate = self._gates.pop(chat_id, None) if isinstance(chat_id, int) else None
        if gate is not None:
            gate.entered.set()
            while not gate.released.is_set():
                await asyncio.sleep(0.005)
            if gate.refuse:
                raise BadRequest("Bad Request: dropped by the test (the sender was killed)")
        return await super()._api_sendmessage(params)

    def stop(self) -> None:
        with self._lock:
            for gate in self._all_gates:
                gate.released.set()
        super().stop()


# --- databases ------------------------------------------------------------------------------


class Database(ABC):
    """One test's database, and raw access to check what the webhook processes wrote."""

    name: str
    url: str  # DATABASE_URL for the webhook processes

    @abstractmethod
    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Raw SQL with `?` placeholders, committed at once."""

    @abstractmethod
    def tables(self) -> list[str]:
        """Every table of the bot's schema."""

    @abstractmethod
    def rows_as_text(self, table: str) -> list[str]:
        """Every row of `table`, all its columns rendered as text."""

    @abstractmethod
    def damage(self, chat_key: str) -> None:
        """Overwrite the chat's stored session with JSON garbage, as a bad migration or a
        hand edit would."""

    @abstractmethod
    def add_reminder(self, chat_key: str) -> None:
        """A reminder row for the chat (nothing schedules them yet; /forget must delete it)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and remove the database."""

    @abstractmethod
    def hold_writes(self) -> contextlib.AbstractContextManager[None]:
        """Keep the bot's commits waiting for the duration of the block (a lock held by
        another client), so a test can kill a process in the middle of committing."""

    def session(self, chat_key: str) -> tuple[Session, int] | None:
        """The stored session and its `version` column, or None when the chat has no row."""
        rows = self.query("SELECT data, version FROM sessions WHERE chat_key = ?", chat_key)
        if not rows:
            return None
        data, version = rows[0]
        parsed = json.loads(data) if isinstance(data, str | bytes) else data
        return Session.from_dict(parsed), int(version)

    def processed(self, chat_key: str) -> list[int]:
        """The chat's processed update ids, in the order they were committed."""
        rows = self.query(
            "SELECT update_id FROM processed_updates WHERE chat_key = ? ORDER BY processed_at, update_id",
            chat_key,
        )
        return [int(row[0]) for row in rows]

    def chat_hash(self, chat_key: str) -> str:
        """The keyed hash events carry instead of the chat, with the key the store generated."""
        rows = self.query("SELECT value FROM store_secrets WHERE name = ?", "event_hash_key")
        assert rows, "the store keeps its generated event hash key in store_secrets"
        return chat_hash(bytes(rows[0][0]), chat_key)

    def count(self, table: str, where: str = "1 = 1", *params: Any) -> int:
        return int(self.query(f"SELECT count(*) FROM {table} WHERE {where}", *params)[0][0])

    def rows_mentioning(self, *needles: str) -> list[tuple[str, str]]:
        """(table, row) of every row, in any table and any column, that contains a needle."""
        return [
            (table, row)
            for table in self.tables()
            for row in self.rows_as_text(table)
            if any(needle in row for needle in needles)
        ]


class SqliteDatabase(Database):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"  # an absolute path: sqlite:////abs/path

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn, conn:
            return conn.execute(sql, params).fetchall()

    def tables(self) -> list[str]:
        return [row[0] for row in self.query("SELECT name FROM sqlite_master WHERE type = 'table'")]

    def rows_as_text(self, table: str) -> list[str]:
        return [
            " | ".join(value.hex() if isinstance(value, bytes) else str(value) for value in row)
            for row in self.query(f'SELECT * FROM "{table}"')
        ]

    def damage(self, chat_key: str) -> None:
        self.query("UPDATE sessions SET data = ? WHERE chat_key = ?", '{"flow": "cardholder", "state": [', chat_key)

    def close(self) -> None:
        """Nothing to release: each query opens and closes its own connection (the file
        goes with the test's temporary folder)."""

    @contextlib.contextmanager
    def hold_writes(self) -> Iterator[None]:
        # SQLite has one writer: holding its write lock makes every commit wait.
        with contextlib.closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                conn.execute("ROLLBACK")

    def add_reminder(self, chat_key: str) -> None:
        self.query(
            "INSERT INTO reminders (chat_key, due_at, payload) VALUES (?, ?, ?)",
            chat_key,
            "2030-01-01T09:00:00.000000+00:00",
            '{"kind": "repayment"}',
        )


class PostgresDatabase(Database):
    """A database of its own on the TEST_DATABASE_URL server, dropped at `close`."""

    name = "postgres"

    def __init__(self, admin_url: str, name: str) -> None:
        import psycopg

        parts = urlsplit(admin_url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("TEST_DATABASE_URL must be a postgresql:// URL")
        self._admin_url = admin_url
        self._dbname = name
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self.url = urlunsplit(parts._replace(path=f"/{name}"))
        self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)

    @property
    def dbname(self) -> str:
        """The database's name on the server."""
        return self._dbname

    @property
    def backend_pid(self) -> int:
        """The server process of the test's own connection (spared when a fault ends others)."""
        return int(self._conn.info.backend_pid)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        cursor = self._conn.execute(sql.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []

    def tables(self) -> list[str]:
        rows = self.query(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        return [row[0] for row in rows]

    def rows_as_text(self, table: str) -> list[str]:
        # A row cast to text holds every column (jsonb as its JSON, bytea as hex).
        return [row[0] for row in self.query(f'SELECT t::text FROM "{table}" AS t')]

    def damage(self, chat_key: str) -> None:
        # jsonb cannot hold broken JSON: valid JSON that is no session is what a bad
        # migration or a hand edit leaves in PostgreSQL.
        self.query(
            "UPDATE sessions SET data = ?::jsonb WHERE chat_key = ?", '{"flow": ["garbage"], "slots": 7}', chat_key
        )

    def add_reminder(self, chat_key: str) -> None:
        self.query(
            "INSERT INTO reminders (chat_key, due_at, payload) VALUES (?, ?, ?::jsonb)",
            chat_key,
            "2030-01-01T09:00:00+00:00",
            '{"kind": "repayment"}',
        )

    @contextlib.contextmanager
    def hold_writes(self) -> Iterator[None]:
        import psycopg

        # Every update records its id: an EXCLUSIVE lock on that table (reads still go
        # on) makes each commit wait.
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            conn.execute("LOCK TABLE processed_updates IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()

    def close(self) -> None:
        import psycopg

        self._conn.close()
        with psycopg.connect(self._admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self._dbname}" WITH (FORCE)')


# --- webhook processes ---------------------------------------------------------------------


class Bots:
    """`python -m bot webhook` processes on one database, stopped at teardown."""

    def __init__(self, standin: StandIn, database: Database, tmp: Path) -> None:
        self.standin = standin
        self.database = database
        self.tmp = tmp
        self._started = 0
        self._envs: dict[int, dict[str, str]] = {}
        self.hooks: list[Webhook] = []

    def env(self, **overrides: str) -> dict[str, str]:
        """A new process's environment: its own port and webhook path, the shared database."""
        folder = self.tmp / "env"
        folder.mkdir(exist_ok=True)
        return webhook_env(self.standin.url, folder, free_port(), DATABASE_URL=self.database.url, **overrides)

    def start(self, env: dict[str, str] | None = None) -> Webhook:
        """Start a process (a new one, or one with the same environment as a dead one)."""
        env = env or self.env()
        self._started += 1
        folder = self.tmp / f"webhook{self._started}"  # a log of its own
        folder.mkdir()
        hook = start_webhook(env, folder)
        self._envs[id(hook)] = env
        self.hooks.append(hook)
        return hook

    def start_together(self, count: int, **overrides: str) -> list[Webhook]:
        """`count` replicas started at the same moment (each migrates the same schema)."""
        envs = [self.env(**overrides) for _ in range(count)]
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(self.start, envs))

    def kill(self, hook: Webhook) -> None:
        """SIGKILL: no graceful shutdown, no finally blocks, connections simply drop."""
        hook.process.kill()
        hook.process.wait(10)
        hook.client.close()

    def restart(self, hook: Webhook, *, kill: bool = True) -> Webhook:
        """Kill (or cleanly stop) `hook` and start a new process with its environment:
        same port, same webhook URL, same database."""
        if kill:
            self.kill(hook)
        else:
            stop_webhook(hook)
        return self.start(self._envs[id(hook)])

    def close(self) -> None:
        for hook in self.hooks:
            stop_webhook(hook)


def metrics(hook: Webhook) -> dict[str, float]:
    """The process's Prometheus samples, e.g. `overdue_updates_handled_total{result="ok",type="message"}`."""
    response = hook.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, float] = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def handled(hook: Webhook, result: str) -> int:
    """How many updates of any type the process handled with `result` (ok, duplicate, ...)."""
    return int(
        sum(
            value
            for name, value in metrics(hook).items()
            if name.startswith("overdue_updates_handled_total{") and f'result="{result}"' in name
        )
    )


@dataclass
class Posted:
    """An update posted from a thread of its own (it may outlive its webhook process)."""

    thread: threading.Thread
    response: httpx.Response | None = None
    error: BaseException | None = None

    def join(self, timeout: float = 30) -> Posted:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the post never finished"
        return self


def post_in_background(hook: Webhook, update: dict[str, Any]) -> Posted:
    """Post `update` to `hook` on a thread, with its own client (the process may die under it)."""
    posted = Posted(threading.Thread(target=lambda: None))

    def run() -> None:
        try:
            with httpx.Client(timeout=60) as client:
                headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
                posted.response = client.post(hook.url, json=update, headers=headers)
        except httpx.TransportError as error:
            posted.error = error

    posted.thread = threading.Thread(target=run, daemon=True)
    posted.thread.start()
    return posted


# --- what the user should have seen, by replaying the events in order ---------------------------


def user_at_amount(hook: Webhook, standin: StandIn, texts: Texts, database: Database) -> tuple[TgUser, str, int]:
    """A new English user who answered up to the amount question (credit card, 45 days):
    the user, their chat key, and the stored session's version."""
    user = TgUser(hook, standin, "en")
    key = f"tg:{user.chat_id}"
    for text in ("/start", "1", "credit card", "45"):
        user.send(text)
    # After a typed number the reply may first read it back; the question comes last.
    assert user.last().text.endswith(texts.ask("cardholder", "amount"))
    stored = database.session(key)
    assert stored is not None
    session, version = stored
    assert (session.flow, session.state) == ("cardholder", "amount")
    return user, key, version


def event_for(text: str) -> Event:
    """The engine event the Telegram adapter makes of a typed text (commands included)."""
    command = parse_command(text)
    if command is None:
        return Said(text)
    event = command.event("en")
    assert event is not None, f"{text} is not a conversation command"
    return event


class _RecordingBot:
    """Enough of PTB's Bot for `TelegramSender.send_all`: keeps what would be sent."""

    def __init__(self) -> None:
        self.sent: list[Reply] = []

    async def send_message(self, chat_id: int, text: str, **options: Any) -> None:
        markup = options.get("reply_markup")
        rows = markup.inline_keyboard if markup is not None else ()
        buttons = [(button.text, str(button.callback_data)) for row in rows for button in row]
        self.sent.append((parse_html(text)[0], buttons))

    async def send_chat_action(self, chat_id: int, action: str, **options: Any) -> None:
        return None


def replay(
    engine: Engine, localizer: Localizer, session: Session, events: Iterable[Event]
) -> tuple[Session, list[Reply]]:
    """Apply `events` one after the other through the real `Advisor.handle` on a store of
    its own (so what is saved is decided by the real code), rendering each turn with the
    real Telegram router and sender. Returns the final session and every message the
    user would have received, in order."""
    bot = _RecordingBot()

    async def run(folder: str) -> Session | None:
        store = SqliteStore(f"sqlite:///{folder}/replay.sqlite3", hash_key=b"replay")
        await store.open()
        try:
            advisor = Advisor(engine, store, localizer)
            router = TelegramAdapter(advisor, TelegramSender(cast(Bot, bot)))
            async with store.conversation("replay") as conversation:
                conversation.save(session)

            for event in events:
                turn = await advisor.handle("replay", event)
                assert turn is not None
                await router.send_turn(0, turn)
            return await store.load("replay")
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as folder:
        final = asyncio.run(run(folder))
    assert final is not None
    return final, bot.sent


def copy_dialogs(source: Path, target: Path) -> Path:
    """A writable copy of a dialogs folder, without its conversation tests."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("tests"))
    return target


def replace_once(path: Path, old: str, new: str) -> None:
    """Edit a file: `old` must occur exactly once."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def visible(replies: Sequence[Any]) -> list[Reply]:
    """Stand-in messages as (text, buttons), comparable with `replay`'s output."""
    return [(message.text, message.buttons) for message in replies]


class Texts:
    """What the bot should say, straight from the dialogs and catalogs."""

    def __init__(self, content: tuple[Engine, Localizer]) -> None:
        self.engine, self.localizer = content

    def ask(self, flow: str, state: str, locale: str = "en") -> str:
        from bot.engine.turn import Msg

        ask = self.engine.spec.flows[flow].states[state].ask
        assert ask is not None
        return self.localizer.text(Msg(ask), locale)

    def message(self, key: str, locale: str = "en") -> str:
        return self.localizer.text(self.engine.message(key), locale)
