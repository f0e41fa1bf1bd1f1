"""The store contract: every test runs against SQLite and PostgreSQL alike.

Each test states something a user would notice if it broke: a conversation lost on
restart, an update applied twice, a /forget that forgot too little, a chat that waits
for another chat.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from bot.config import Settings
from bot.engine.session import Session, Snapshot
from bot.store.base import Store

from .conftest import HASH_KEY, TABLES, Harness


def new_session(**slots: object) -> Session:
    return Session(flow="cardholder", state="welcome", locale="zh_CN", slots=dict(slots))  # type: ignore[arg-type]


def rich_session() -> Session:
    """A session using every field, with Chinese text in it."""
    return Session(
        flow="cardholder",
        state="amount",
        locale="zh_CN",
        slots={"days_overdue": 45, "amount": 23000.5, "bank": "招商银行", "ok": True, "evidence": ["失业", "forgot"]},
        history=(Snapshot(flow="cardholder", state="days", slots={"days_overdue": 45}),),
        version=7,
        flags=frozenset({"crisis_shown"}),
    )


def hashed(chat_key: str) -> str:
    """The documented event hash: HMAC-SHA256(key, chat key), hex."""
    return hmac.new(HASH_KEY, chat_key.encode(), hashlib.sha256).hexdigest()


async def increment(store: Store, chat_key: str, update_id: int) -> None:
    """Read slot n, yield to other tasks (so a lost update would show), write n + 1."""
    async with store.conversation(chat_key, update_id) as conv:
        session = conv.session or new_session(n=0)
        n = int(session.slots.get("n", 0))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        conv.save(session.evolve(slots={**session.slots, "n": n + 1}))


@asynccontextmanager
async def holding(store: Store, chat_key: str, update_id: int, n: int) -> AsyncIterator[None]:
    """Hold `chat_key`'s conversation open while the body runs; on leaving, save `n`."""
    held, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with store.conversation(chat_key, update_id) as conv:
            held.set()
            await release.wait()
            conv.save(new_session(n=n))

    holder = asyncio.create_task(hold())
    await held.wait()
    try:
        yield
    finally:
        release.set()
        await holder


async def test_save_then_load_round_trip(store: Store) -> None:
    session = rich_session()
    async with store.conversation("chat-1", 100) as conv:
        assert conv.session is None and not conv.duplicate and not conv.damaged
        conv.save(session)
    assert await store.load("chat-1") == session
    async with store.conversation("chat-1", 101) as conv:
        assert conv.session == session
    assert await store.load("nobody") is None


async def test_session_survives_reopening_the_store(store: Store, harness: Harness) -> None:
    async with store.conversation("chat-1", 1) as conv:
        conv.save(rich_session())
    await store.close()
    reopened = await harness.open_new()
    assert await reopened.load("chat-1") == rich_session()
    async with reopened.conversation("chat-1", 1) as conv:
        assert conv.duplicate, "the processed update id must survive a restart too"


async def test_duplicate_update_is_applied_once(store: Store, harness: Harness) -> None:
    first = new_session(n=1)
    async with store.conversation("chat-1", 7) as conv:
        conv.save(first)
    async with store.conversation("chat-1", 7) as conv:
        assert conv.duplicate
        assert conv.session == first  # loaded anyway
        conv.save(new_session(n=2))  # must be ignored
    assert await store.load("chat-1") == first
    assert await harness.count("processed_updates") == 1
    # The same update id in another chat is another update.
    async with store.conversation("chat-2", 7) as conv:
        assert not conv.duplicate


async def test_exception_in_block_commits_nothing(store: Store, harness: Harness) -> None:
    async with store.conversation("chat-1", 1) as conv:
        conv.save(new_session(n=1))
    with pytest.raises(RuntimeError, match="send failed"):
        async with store.conversation("chat-1", 2) as conv:
            conv.save(new_session(n=2))
            raise RuntimeError("send failed")
    assert await store.load("chat-1") == new_session(n=1)
    # Not recorded as processed: Telegram's re-delivery is applied.
    async with store.conversation("chat-1", 2) as conv:
        assert not conv.duplicate
        conv.save(new_session(n=2))
    assert await store.load("chat-1") == new_session(n=2)
    # An exception in a block that erases erases nothing.
    with pytest.raises(RuntimeError):
        async with store.conversation("chat-1", 3) as conv:
            conv.erase()
            raise RuntimeError("boom")
    assert await store.load("chat-1") == new_session(n=2)


async def test_no_update_id_records_nothing(store: Store, harness: Harness) -> None:
    async with store.conversation("chat-1") as conv:
        conv.save(new_session())
    async with store.conversation("chat-1") as conv:
        assert not conv.duplicate
    assert await harness.count("processed_updates") == 0


async def test_erase_removes_every_row_about_the_chat(store: Store, harness: Harness) -> None:
    for chat in ("forget-me", "keep-me"):
        async with store.conversation(chat, 1) as conv:
            conv.save(rich_session())
        async with store.conversation(chat, 2) as conv:
            conv.save(rich_session().evolve())
        await store.record_event("diagnosed", chat, {"cause": "unstable_income"})
        await store.record_event("started", chat, {})
        await store.add_reminder(chat, harness.clock() + timedelta(days=1), {"text": "还款"})
    before = await harness.rows_mentioning("forget-me", hashed("forget-me"))
    assert all(before[t] > 0 for t in TABLES), before

    async with store.conversation("forget-me", 3) as conv:
        conv.erase()

    assert await harness.rows_mentioning("forget-me", hashed("forget-me")) == dict.fromkeys(TABLES, 0)
    assert await store.load("forget-me") is None
    kept = await harness.rows_mentioning("keep-me", hashed("keep-me"))
    assert kept == {"sessions": 1, "processed_updates": 2, "reminders": 1, "events": 2}
    assert (await store.stats())["active_conversations"] == 1


async def test_save_after_erase_in_one_block_keeps_the_new_session(store: Store) -> None:
    async with store.conversation("chat-1", 1) as conv:
        conv.save(new_session(n=1))
    async with store.conversation("chat-1", 2) as conv:
        conv.erase()
        conv.save(new_session(n=0))  # "/forget, then start again"
    assert await store.load("chat-1") == new_session(n=0)


async def test_purge_idle_removes_only_idle_sessions(store: Store, harness: Harness) -> None:
    async with store.conversation("idle", 1) as conv:
        conv.save(new_session())
    harness.clock.advance(days=30)
    async with store.conversation("active", 1) as conv:
        conv.save(new_session())
    assert await store.purge_idle(harness.clock() - timedelta(days=7)) == 1
    assert await store.load("idle") is None
    assert await store.load("active") == new_session()
    assert await store.purge_idle(harness.clock() - timedelta(days=7)) == 0
    # A visit refreshes updated_at: touched chats are not idle.
    harness.clock.advance(days=6)
    async with store.conversation("active", 2) as conv:
        conv.save(new_session(n=1))
    harness.clock.advance(days=6)
    assert await store.purge_idle(harness.clock() - timedelta(days=7)) == 0


async def test_old_processed_update_ids_are_pruned(store: Store, harness: Harness) -> None:
    async with store.conversation("chat-1", 1) as conv:
        conv.save(new_session())
    harness.clock.advance(days=8)
    async with store.conversation("chat-1", 2) as conv:
        conv.save(new_session())
    await store.purge_idle(harness.clock() - timedelta(days=365))  # also prunes
    assert await harness.query("SELECT update_id FROM processed_updates") == [(2,)]


async def test_damaged_session_is_reported_and_can_be_replaced(store: Store, harness: Harness) -> None:
    async with store.conversation("chat-1", 1) as conv:
        conv.save(new_session(n=1))
    await harness.damage("chat-1")
    assert await store.load("chat-1") is None
    async with store.conversation("chat-1", 2) as conv:
        assert conv.damaged and conv.session is None and not conv.duplicate
        conv.save(new_session(n=0))  # the engine restarts the user
    assert await store.load("chat-1") == new_session(n=0)
    async with store.conversation("chat-1", 3) as conv:
        assert not conv.damaged


async def test_migrations_twice_change_nothing(store: Store, harness: Harness) -> None:
    versions = await harness.versions()
    assert versions == list(range(1, len(versions) + 1)) and versions
    async with store.conversation("chat-1", 1) as conv:
        conv.save(rich_session())
    await store.open()  # already open: a no-op
    again = await harness.open_new()  # a second process / replica starting
    await again.close()
    await again.open()
    assert await harness.versions() == versions
    assert await again.load("chat-1") == rich_session()


async def test_replicas_starting_at_once_migrate_once(
    store: Store, harness: Harness, make_harness: Callable[[str], Harness]
) -> None:
    fresh = make_harness(harness.name)
    stores = [fresh.make() for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    versions = await fresh.versions()
    assert versions == list(range(1, len(versions) + 1))
    await asyncio.gather(*(increment(s, "chat", i) for i, s in enumerate(stores)))
    assert (await stores[0].load("chat")).slots["n"] == 4  # type: ignore[union-attr]


async def test_fifty_concurrent_updates_on_one_chat(store: Store) -> None:
    await asyncio.gather(*(increment(store, "busy", i) for i in range(50)))
    session = await store.load("busy")
    assert session is not None and session.slots["n"] == 50


async def test_two_stores_on_one_database_serialise_a_chat(store: Store, harness: Harness) -> None:
    """Two store objects (two pools: like two replicas) take turns on one chat."""
    other = await harness.open_new()
    await asyncio.gather(*(increment(store if i % 2 else other, "busy", i) for i in range(50)))
    session = await store.load("busy")
    assert session is not None and session.slots["n"] == 50

    # While one holds the chat, the other waits for it...
    async with holding(store, "busy", 1000, n=100):
        waiter = asyncio.create_task(increment(other, "busy", 1001))
        done, _ = await asyncio.wait({waiter}, timeout=0.3)
        assert not done, "the other store entered a chat that was held"
    # ...and continues from the holder's result, not from the state it saw earlier.
    await asyncio.wait_for(waiter, timeout=5)
    session = await store.load("busy")
    assert session is not None and session.slots["n"] == 101


async def test_a_held_chat_does_not_block_other_chats(store: Store, harness: Harness) -> None:
    other = await harness.open_new()
    async with holding(store, "chat-a", 1, n=1):
        await asyncio.wait_for(increment(store, "chat-b", 1), timeout=2)
        await asyncio.wait_for(increment(other, "chat-c", 1), timeout=2)
        assert await asyncio.wait_for(store.load("chat-a"), timeout=2) is None
    assert await store.load("chat-a") == new_session(n=1)


async def test_cancelled_waiter_leaves_the_chat_usable(store: Store) -> None:
    async with holding(store, "chat", 1, n=1):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(increment(store, "chat", 2), timeout=0.1)
    await asyncio.wait_for(increment(store, "chat", 3), timeout=5)
    session = await store.load("chat")
    assert session is not None and session.slots["n"] == 2


async def test_events_are_counted_without_the_chat_key(store: Store, harness: Harness) -> None:
    await store.record_event("diagnosed", "chat-1", {"cause": "missed_reminder"})
    await store.record_event("diagnosed", "chat-2", {"cause": "other_debts"})
    await store.record_event("started", "chat-1", {})
    async with store.conversation("chat-1", 1) as conv:
        conv.save(new_session())
    assert await store.stats() == {
        "active_conversations": 1,
        "event:diagnosed": 2,
        "event:started": 1,
    }
    rows = await harness.query("SELECT chat_hash FROM events ORDER BY id")
    assert [r[0] for r in rows] == [hashed("chat-1"), hashed("chat-2"), hashed("chat-1")]


async def test_default_hash_key_is_stable_across_restarts(harness: Harness) -> None:
    """Without EVENT_HASH_KEY, /forget after a restart still finds the chat's events."""
    first = await harness.open_new(hash_key=None)
    await first.record_event("started", "chat-1", {})
    await first.close()
    second = await harness.open_new(hash_key=None)
    async with second.conversation("chat-1", 1) as conv:
        conv.erase()
    assert await harness.count("events") == 0


async def test_hash_key_from_the_settings(harness: Harness) -> None:
    settings = Settings.from_env("chat", {"EVENT_HASH_KEY": HASH_KEY.decode()})
    from_env = await harness.open_new(hash_key=settings.event_hash_key)
    await from_env.record_event("started", "chat-9", {})
    assert await harness.count("events", "chat_hash = ?", hashed("chat-9")) == 1


async def test_due_reminders_oldest_first(store: Store, harness: Harness) -> None:
    now = harness.clock()
    later = await store.add_reminder("chat-1", now + timedelta(hours=1), {"n": 3})
    second = await store.add_reminder("chat-2", now - timedelta(minutes=5), {"n": 2})
    first = await store.add_reminder("chat-1", now - timedelta(days=1), {"text": "还款日"})
    due = await store.due_reminders(now)
    assert [r.id for r in due] == [first, second]
    assert due[0].chat_key == "chat-1" and due[0].payload == {"text": "还款日"}
    assert due[0].due_at == now - timedelta(days=1) and due[0].due_at.utcoffset() == timedelta(0)
    assert [r.id for r in await store.due_reminders(now, limit=1)] == [first]
    assert {r.id for r in await store.due_reminders(now + timedelta(hours=2))} == {first, second, later}


async def test_ping(store: Store, harness: Harness) -> None:
    assert await store.ping()
    await store.close()
    assert not await store.ping()
