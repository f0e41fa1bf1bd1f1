"""The transactional outbox, Telegram side: replies are committed with the update, then
sent per chat, in order, exactly once (but for the named window), whatever Telegram does.

Two levels. The `Delivery` on its own: a real store (a SQLite file; PostgreSQL too when
TEST_DATABASE_URL is set), PTB's real bot with our rate limiter, real HTTP to the
stand-in Bot API told to fail. And the real webhook process: late answers, a 429 for one
chat while another talks, a crash after the commit, a store that cannot commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import Bot, Update
from telegram.ext import ExtBot

from bot.channels.telegram.adapter import TelegramAdapter
from bot.channels.telegram.delivery import Delivery, DeliveryPolicy
from bot.channels.telegram.effects import AnswerPress, EditText, Effect, SendText, chat_key, encode
from bot.channels.telegram.outcome import Outcome
from bot.channels.telegram.ratelimit import ChatRateLimiter
from bot.channels.telegram.sender import TelegramSender
from bot.conversations import Advisor
from bot.runtime import build_engine
from bot.store.base import Store, StoreUnavailable
from bot.store.sqlite import SqliteStore
from tests.support.tg_harness import (
    SECRET,
    TOKEN,
    TgUser,
    Webhook,
    free_port,
    message_update,
    new_chat_id,
    start_webhook,
    stop_webhook,
    webhook_env,
)
from tests.support.tg_standin import StandIn

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
HASH_KEY = b"outbox-test-hash-key"
# Quick to retry and to sweep, so a test waits tenths of seconds, not the production seconds.
QUICK = DeliveryPolicy(first_backoff=0.2, sweep_every=0.05, stale_after=timedelta(0), beat_every=0.5)


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# --- the Delivery on its own ---------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    schema = None
    opened: Store
    if request.param == "sqlite":
        opened = SqliteStore(f"sqlite:///{tmp_path / 'outbox.sqlite3'}", hash_key=HASH_KEY)
    else:
        if not PG_URL:
            pytest.skip("TEST_DATABASE_URL not set: PostgreSQL tests skipped")
        from bot.store.postgres import PostgresStore

        schema = f"outbox_test_{uuid.uuid4().hex[:12]}"
        opened = PostgresStore(PG_URL, schema=schema, hash_key=HASH_KEY, connect_timeout=5)
    await opened.open()
    yield opened
    await opened.close()
    if schema is not None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def sender(standin: StandIn) -> AsyncIterator[TelegramSender]:
    bot: ExtBot[None] = ExtBot(TOKEN, base_url=f"{standin.url}/bot", rate_limiter=ChatRateLimiter(0))
    await bot.initialize()
    yield TelegramSender(bot)
    await bot.shutdown()
    standin.clear_faults()


@pytest.fixture
async def running(store: Store, sender: TelegramSender) -> AsyncIterator[Delivery]:
    delivery = Delivery(store, sender.perform, QUICK)
    await delivery.start()
    yield delivery
    await delivery.stop(grace=1)


async def commit(store: Store, chat_id: int, *effects: Effect) -> None:
    """What `Advisor.handle` does with a turn's effects: into the outbox, committed."""
    async with store.conversation(chat_key(chat_id)) as conv:
        for effect in effects:
            conv.send(encode(effect))


async def unsent(store: Store, chat_id: int) -> int:
    """The chat's messages still in the outbox (claimed by a probe owner, then released)."""
    claimed = await store.claim_outbox(chat_key(chat_id), "test-probe", timedelta(seconds=1), 1000)
    if claimed:
        await store.defer_outbox(chat_key(chat_id), datetime.now(UTC))
    return len(claimed)


async def test_a_turn_is_sent_in_order_with_its_keyboard(store: Store, running: Delivery, standin: StandIn) -> None:
    chat = new_chat_id()
    buttons = (("Yes", "a:3:0"), ("No", "a:3:1"))
    await commit(store, chat, SendText("<b>one</b>"), SendText("two"), SendText("three?", buttons))
    running.wake(chat_key(chat))
    await eventually(lambda: len(standin.messages(chat)) == 3, "the turn")
    sent = standin.messages(chat)
    assert [m.text for m in sent] == ["one", "two", "three?"]
    assert sent[0].entities == [{"type": "bold", "offset": 0, "length": 3}]
    assert [b for m in sent[:2] for b in m.buttons] == [] and sent[2].buttons == list(buttons)
    await running.idle()
    assert await unsent(store, chat) == 0


async def test_a_500_mid_turn_sends_the_first_once_and_the_rest_after_backoff(
    store: Store, running: Delivery, standin: StandIn
) -> None:
    chat = new_chat_id()
    standin.fail_call("sendMessage", 2, code=500, chat_id=chat)
    await commit(store, chat, SendText("first"), SendText("second"), SendText("third"))
    running.wake(chat_key(chat))
    await eventually(lambda: len(standin.messages(chat)) == 3, "the rest after the backoff")
    assert [m.text for m in standin.messages(chat)] == ["first", "second", "third"]
    # Telegram was asked for "first" once and "second" twice (the 500, then the retry).
    asked = [call.params["text"] for call in standin.calls("sendMessage", chat)]
    assert asked == ["first", "second", "third"]
    assert [text for method, params, text in standin.refused() if params.get("chat_id") == chat] == [
        "Internal Server Error"
    ]
    assert running.counts.deferred == 1


async def test_a_blocked_user_s_outbox_is_dropped_and_the_hook_called(
    store: Store, sender: TelegramSender, standin: StandIn
) -> None:
    blocked, other = new_chat_id(), new_chat_id()
    told: list[str] = []

    async def on_blocked(key: str) -> None:
        told.append(key)

    delivery = Delivery(store, sender.perform, QUICK, on_blocked=on_blocked)
    standin.fail_call("sendMessage", 1, code=403, chat_id=blocked)
    await commit(store, blocked, SendText("one"), SendText("two"), SendText("three"))
    await commit(store, other, SendText("hello"))
    delivery.wake(chat_key(blocked))
    delivery.wake(chat_key(other))
    await delivery.idle()
    assert told == [chat_key(blocked)]
    assert standin.messages(blocked) == [] and await unsent(store, blocked) == 0
    assert len(standin.calls("sendMessage", blocked)) == 0  # not one try after the 403
    assert [m.text for m in standin.messages(other)] == ["hello"]
    assert delivery.counts.blocked_chats == 1


async def test_cosmetic_failures_never_hold_the_chat_up(store: Store, running: Delivery, standin: StandIn) -> None:
    chat, query = new_chat_id(), uuid.uuid4().hex
    # An edit of a message that does not exist, a press answered twice: both refused.
    await commit(store, chat, EditText(999_999, "gone"), AnswerPress(query), AnswerPress(query), SendText("reply"))
    running.wake(chat_key(chat))
    await eventually(lambda: len(standin.messages(chat)) == 1, "the reply")
    await running.idle()
    assert running.counts.dropped == 2 and running.counts.deferred == 0


async def test_a_message_telegram_refuses_is_dropped_and_the_next_goes(
    store: Store, running: Delivery, standin: StandIn
) -> None:
    chat = new_chat_id()
    await commit(store, chat, SendText("<b>unclosed"), SendText("fine"))
    running.wake(chat_key(chat))
    await eventually(lambda: len(standin.messages(chat)) == 1, "the next message")
    assert standin.messages(chat)[0].text == "fine"


class _FlakyMarks(SqliteStore):
    """A SQLite store whose first `failures` marks fail, as when the database is down."""

    failures = 2
    marks = 0

    async def mark_sent(self, *message_ids: int) -> None:
        self.marks += 1
        if self.marks <= self.failures:
            raise StoreUnavailable("the database is down (test)")
        await super().mark_sent(*message_ids)


async def test_a_mark_that_fails_is_retried_and_the_message_never_resent(
    tmp_path: Path, sender: TelegramSender, standin: StandIn
) -> None:
    store = _FlakyMarks(f"sqlite:///{tmp_path / 'flaky.sqlite3'}", hash_key=HASH_KEY)
    await store.open()
    try:
        chat = new_chat_id()
        delivery = Delivery(store, sender.perform, QUICK)
        await commit(store, chat, SendText("once"), SendText("twice?"))
        delivery.wake(chat_key(chat))
        await delivery.idle()
        assert [call.params["text"] for call in standin.calls("sendMessage", chat)] == ["once", "twice?"]
        assert store.marks == 4 and await unsent(store, chat) == 0
    finally:
        await store.close()


async def test_a_429_defers_that_chat_only(store: Store, running: Delivery, standin: StandIn) -> None:
    slow, fast = new_chat_id(), new_chat_id()
    standin.flood_wait(slow, 1)
    await commit(store, slow, SendText("a1"), SendText("a2"))
    running.wake(chat_key(slow))
    await eventually(lambda: running.counts.deferred == 1, "the 429")
    await commit(store, fast, SendText("b"))
    running.wake(chat_key(fast))
    await eventually(lambda: len(standin.messages(fast)) == 1, "the other chat")
    assert standin.messages(slow) == []  # still waiting out its retry_after
    await eventually(lambda: len(standin.messages(slow)) == 2, "the deferred chat")
    assert [m.text for m in standin.messages(slow)] == ["a1", "a2"]
    refusals = [text for _, params, text in standin.refused() if params.get("chat_id") == slow]
    assert len(refusals) == 1  # waited for retry_after; did not hammer Telegram meanwhile


# --- the webhook process -----------------------------------------------------------------------


@pytest.fixture
def faults(standin: StandIn) -> Iterator[StandIn]:
    yield standin
    standin.clear_faults()


def test_a_late_answer_is_waited_for_not_sent_again(user: TgUser, faults: StandIn) -> None:
    # Telegram takes the message and answers after 5.5 s: beyond PTB's default 5 s read
    # timeout (which used to fail the update and send the reply again on redelivery).
    faults.answer_late(5.5, count=1, chat_id=user.chat_id)
    started = time.monotonic()
    response = user.hook.post(message_update(user.chat_id, "/start"))
    answered = time.monotonic() - started
    assert response.status_code == 200
    assert answered < 5.5  # acknowledged once committed, not after Telegram answered
    user.hook.wait_delivered(user.chat_id)
    assert len(user.calls("sendMessage")) == 1 and len(user.messages()) == 1
    assert faults.late_answered >= 1
    assert "TimedOut" not in user.hook.logs()


def test_a_429_for_one_chat_does_not_delay_another(webhook: Webhook, faults: StandIn, capsys: Any) -> None:
    a, b = TgUser(webhook, faults), TgUser(webhook, faults)
    faults.flood_wait(a.chat_id, 3)
    assert webhook.post(message_update(a.chat_id, "/start")).status_code == 200
    started = time.monotonic()
    assert webhook.post(message_update(b.chat_id, "/start")).status_code == 200
    webhook.wait_delivered(b.chat_id)
    b_delay = time.monotonic() - started
    assert webhook.outbox(a.chat_id) == 1  # A still waits out its retry_after ...
    assert len(b.messages()) == 1  # ... while B has its reply
    webhook.wait_delivered(a.chat_id)
    a_delay = time.monotonic() - started
    assert len(a.messages()) == 1
    with capsys.disabled():
        print(f"\n[outbox] retry_after=3 for chat A: B answered in {b_delay:.3f} s, A in {a_delay:.2f} s")


@pytest.fixture(scope="module")
def own_standin() -> Iterator[StandIn]:
    """A stand-in of its own: a process registers its webhook there, not on the suite's."""
    server = StandIn(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def crashed(own_standin: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Webhook, int]]:
    """A process started on a database where an update was committed, its reply in the
    outbox, and no sender ever ran (the process died right after the commit)."""
    standin = own_standin
    tmp = tmp_path_factory.mktemp("crashed")
    database = tmp / "bot.sqlite3"
    chat = new_chat_id()

    async def commit_without_sending() -> None:
        engine, localizer = build_engine()
        store = SqliteStore(f"sqlite:///{database}")
        await store.open()
        try:
            advisor = Advisor(engine, store, localizer)
            router = TelegramAdapter(advisor, TelegramSender(Bot(TOKEN)))  # no delivery
            update = Update.de_json(message_update(chat, "/start"), None)
            assert await router.handle(update) is Outcome.HANDLED
        finally:
            await store.close()

    asyncio.run(commit_without_sending())
    with contextlib.closing(sqlite3.connect(database)) as conn:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
    assert standin.messages(chat) == []
    hook = start_webhook(webhook_env(standin.url, tmp, free_port(), DATABASE_URL=f"sqlite:///{database}"), tmp)
    yield hook, chat
    stop_webhook(hook)


def test_a_crash_after_commit_is_sent_by_the_next_process_once(
    crashed: tuple[Webhook, int], own_standin: StandIn
) -> None:
    hook, chat = crashed
    standin = own_standin
    hook.wait_delivered(chat)
    assert len(standin.calls("sendMessage", chat)) == 1
    assert "I am Overdue Advisor" in standin.messages(chat)[0].text


def test_a_store_that_cannot_commit_is_unhealthy_and_sends_nothing(
    crashed: tuple[Webhook, int], own_standin: StandIn
) -> None:
    hook, _ = crashed
    standin = own_standin
    chat = new_chat_id()
    update = message_update(chat, "/start")
    # Another connection holds SQLite's write lock: reads work, commits cannot.
    blocker = sqlite3.connect(hook.database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        outcome: dict[str, httpx.Response] = {}
        poster = threading.Thread(target=lambda: outcome.update(response=post(hook, update)))
        poster.start()
        assert standin.wait_for(lambda: hook.get("/healthz").status_code == 503, timeout=15)
        poster.join(30)
        assert outcome["response"].status_code == 503  # nothing committed: Telegram delivers again
        assert standin.messages(chat) == []  # and nothing was sent
    finally:
        blocker.rollback()
        blocker.close()
    assert standin.wait_for(lambda: hook.get("/healthz").status_code == 200, timeout=15)
    assert post(hook, update).status_code == 200  # Telegram's redelivery
    hook.wait_delivered(chat)
    assert post(hook, update).status_code == 200  # and another: a duplicate
    hook.wait_delivered(chat)
    assert len(standin.messages(chat)) == 1


def post(hook: Webhook, update: dict[str, Any]) -> httpx.Response:
    """Post from any thread (the hook's own client is not shared across threads)."""
    with httpx.Client(timeout=60) as client:
        return client.post(hook.url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
