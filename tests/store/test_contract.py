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
from bot.store.base import Store, StoreUnavailable

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
            conv.send({"text": "unsent reply"})
        await store.record_event("diagnosed", chat, {"cause": "unstable_income"})
        await store.record_event("started", chat, {})
        await store.add_reminder(chat, harness.clock() + timedelta(days=1), {"text": "还款"})
    before = await harness.rows_mentioning("forget-me", hashed("forget-me"))
    assert all(before[t] > 0 for t in TABLES), before

    async with store.conversation("forget-me", 3) as conv:
        conv.erase()
        # Queued in the erasing block: kept, each would name the chat again.
        conv.send({"text": "your data is gone"})
        conv.count("forgot", {})

    assert await harness.rows_mentioning("forget-me", hashed("forget-me")) == dict.fromkeys(TABLES, 0)
    assert await store.load("forget-me") is None
    assert await store.claim_outbox("forget-me", "sender", timedelta(seconds=30)) == []
    kept = await harness.rows_mentioning("keep-me", hashed("keep-me"))
    assert kept == {"sessions": 1, "processed_updates": 2, "reminders": 1, "events": 2, "outbox": 1}
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


async def test_old_sender_beats_are_pruned(store: Store, harness: Harness) -> None:
    """Each process that ever sent leaves a heartbeat row; old ones go."""
    await store.beat("crashed-long-ago")
    await store.probe_write()
    harness.clock.advance(days=8)
    await store.beat("running")
    await store.purge_idle(harness.clock() - timedelta(days=365))  # also prunes
    assert sorted(await harness.query("SELECT name FROM heartbeat")) == [("owner:running",), ("probe",)]


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


async def test_reminders_soonest_first(store: Store, harness: Harness) -> None:
    # Firing them, and changing them in a conversation: tests/reminders/test_store.py.
    now = harness.clock()
    later = await store.add_reminder("chat-1", now + timedelta(hours=1), {"n": 3})
    await store.add_reminder("chat-2", now - timedelta(minutes=5), {"n": 2})
    first = await store.add_reminder("chat-1", now - timedelta(days=1), {"text": "还款日"}, kind="checkin")
    rows = await store.reminders("chat-1")
    assert [r.id for r in rows] == [first, later]
    assert (rows[0].kind, rows[0].payload, rows[1].kind) == ("checkin", {"text": "还款日"}, "monthly")
    assert rows[0].due_at == now - timedelta(days=1) and rows[0].due_at.utcoffset() == timedelta(0)


async def test_ping(store: Store, harness: Harness) -> None:
    assert await store.ping()
    await store.close()
    assert not await store.ping()


# -- the outbox: committed with the turn, then claimed, sent, deferred ------------

LEASE = timedelta(seconds=30)

KEYBOARD_REPLY = {
    "text": "第一步：了解你的数字 <b>23,000.50</b>",
    "reply_markup": {"inline_keyboard": [[{"text": "是", "callback_data": "a:3:0"}]]},
}


async def test_outbox_is_committed_with_the_session_in_order(store: Store, harness: Harness) -> None:
    async with store.conversation("chat-1", 1) as conv:
        conv.save(new_session(n=1))
        conv.send(KEYBOARD_REPLY)
        conv.send({"text": "two"})
        conv.send({"photo": "chart", "caption": "three"})
        conv.count("started", {"flow": "cardholder"})
        # Not visible to a sender before the block commits.
        assert await store.claim_outbox("chat-1", "sender", LEASE) == []
        assert await store.pending_chats(harness.clock(), timedelta(0)) == []
    claimed = await store.claim_outbox("chat-1", "sender", LEASE)
    assert [m.payload for m in claimed] == [KEYBOARD_REPLY, {"text": "two"}, {"photo": "chart", "caption": "three"}]
    assert [m.chat_key for m in claimed] == ["chat-1"] * 3 and [m.attempts for m in claimed] == [0, 0, 0]
    assert [m.id for m in claimed] == sorted(m.id for m in claimed)
    assert await store.load("chat-1") == new_session(n=1)
    (event,) = await store.events()
    assert (event.name, event.chat_hash, event.data, event.created_at) == (
        "started",
        hashed("chat-1"),
        {"flow": "cardholder"},
        harness.clock(),
    )
    # The next turn's messages queue behind the unsent ones.
    async with store.conversation("chat-1", 2) as conv:
        conv.send({"text": "four"})
    again = await store.claim_outbox("chat-1", "sender", LEASE)
    assert [m.payload["text"] for m in again if "text" in m.payload] == [KEYBOARD_REPLY["text"], "two", "four"]


async def test_a_failed_block_queues_nothing(store: Store, harness: Harness) -> None:
    with pytest.raises(RuntimeError):
        async with store.conversation("chat-1", 1) as conv:
            conv.save(new_session(n=1))
            conv.send({"text": "reply"})
            conv.count("started", {})
            raise RuntimeError("the engine failed")
    assert await harness.count("outbox") == 0 and await store.events() == []
    # Telegram's re-delivery is applied, and queues the reply once.
    async with store.conversation("chat-1", 1) as conv:
        assert not conv.duplicate
        conv.send({"text": "reply"})
    assert [m.payload for m in await store.claim_outbox("chat-1", "sender", LEASE)] == [{"text": "reply"}]


async def test_a_duplicate_queues_nothing(store: Store, harness: Harness) -> None:
    async with store.conversation("chat-1", 1) as conv:
        conv.save(new_session(n=1))
        conv.send({"text": "reply"})
        conv.count("started", {})
    async with store.conversation("chat-1", 1) as conv:
        assert conv.duplicate
        conv.send({"text": "reply"})
        conv.count("started", {})
    assert await harness.count("outbox") == 1 and len(await store.events()) == 1


async def test_replies_without_a_new_session_are_committed_with_the_update_id(store: Store, harness: Harness) -> None:
    async with store.conversation("chat-1", 5) as conv:
        conv.send({"text": "please use the buttons"})
        conv.count("ignored", {})
    async with store.conversation("chat-1", 5) as conv:
        assert conv.duplicate, "the update id was committed with the reply"
    async with store.conversation("chat-1") as conv:  # no update (a reminder, say)
        conv.send({"text": "reminder"})
    assert await store.load("chat-1") is None
    claimed = await store.claim_outbox("chat-1", "sender", LEASE)
    assert [m.payload["text"] for m in claimed] == ["please use the buttons", "reminder"]
    assert [e.name for e in await store.events()] == ["ignored"]


async def test_one_chat_is_claimed_by_one_replica_at_a_time(store: Store, harness: Harness) -> None:
    other = await harness.open_new()  # a second replica on the same database
    await store.beat("replica-a")
    await other.beat("replica-b")
    for update_id in (1, 2, 3):
        async with store.conversation("chat-1", update_id) as conv:
            conv.send({"n": update_id})
    async with store.conversation("chat-2", 1) as conv:
        conv.send({"n": 1})

    first = await store.claim_outbox("chat-1", "replica-a", LEASE, limit=2)
    assert [m.payload["n"] for m in first] == [1, 2]
    assert await other.claim_outbox("chat-1", "replica-b", LEASE) == [], "a live claim belongs to replica-a"
    assert [m.payload for m in await other.claim_outbox("chat-2", "replica-b", LEASE)] == [{"n": 1}]
    # The owner's own claim again: the same rows, and the rest up to the limit.
    assert [m.payload["n"] for m in await store.claim_outbox("chat-1", "replica-a", LEASE)] == [1, 2, 3]

    await store.mark_sent(first[0].id)
    # A 429 for the chat: nobody sends it before the deferral ends, not even its owner.
    harness.clock.advance(seconds=1)
    await store.defer_outbox("chat-1", harness.clock() + timedelta(seconds=20))
    assert await store.claim_outbox("chat-1", "replica-a", LEASE) == []
    assert await other.claim_outbox("chat-1", "replica-b", LEASE) == []
    harness.clock.advance(seconds=20)
    await store.beat("replica-a")
    await other.beat("replica-b")
    resumed = await other.claim_outbox("chat-1", "replica-b", LEASE)
    assert [(m.payload["n"], m.attempts) for m in resumed] == [(2, 1), (3, 1)]
    assert await store.claim_outbox("chat-1", "replica-a", LEASE) == []

    # replica-b crashes mid-send: it stops beating, and once it has been silent for
    # the owner timeout (15 s) replica-a takes the chat over, long before the lease ends.
    harness.clock.advance(seconds=10)
    await store.beat("replica-a")
    assert await store.claim_outbox("chat-1", "replica-a", LEASE) == [], "replica-b beat 10 s ago"
    harness.clock.advance(seconds=6)
    await store.beat("replica-a")
    taken = await store.claim_outbox("chat-1", "replica-a", LEASE)
    assert [(m.payload["n"], m.attempts) for m in taken] == [(2, 1), (3, 1)]

    # A beating owner whose lease ended (a send hung past it) loses the chat too.
    await other.beat("replica-b")
    assert await other.claim_outbox("chat-1", "replica-b", LEASE) == []
    harness.clock.advance(seconds=31)
    await store.beat("replica-a")
    await other.beat("replica-b")
    assert len(await other.claim_outbox("chat-1", "replica-b", LEASE)) == 2
    # A sender stopping cleanly hands its chats on at once, no attempt counted
    # (chat-1's two messages and the one of chat-2 it claimed at the start).
    assert await other.release_outbox("replica-b") == 3
    released = await store.claim_outbox("chat-1", "replica-a", LEASE)
    assert [(m.payload["n"], m.attempts) for m in released] == [(2, 1), (3, 1)]
    for message in released:
        await store.mark_sent(message.id)
    assert await harness.count("outbox", "chat_key = ?", "chat-1") == 0


async def test_concurrent_claims_give_a_chat_to_one_owner(store: Store, harness: Harness) -> None:
    replicas = [store, await harness.open_new()]
    for i in range(10):
        await replicas[i % 2].beat(f"owner-{i}")
    async with store.conversation("chat-1", 1) as conv:
        for n in range(5):
            conv.send({"n": n})
    results = await asyncio.gather(*(replicas[i % 2].claim_outbox("chat-1", f"owner-{i}", LEASE) for i in range(10)))
    winners = [i for i, claimed in enumerate(results) if claimed]
    assert len(winners) == 1, winners
    assert [m.payload["n"] for m in results[winners[0]]] == [0, 1, 2, 3, 4]


async def test_pending_chats_finds_what_a_crash_left_unsent(store: Store, harness: Harness) -> None:
    grace = timedelta(seconds=10)
    for chat in ("first", "second", "third", "fourth"):
        async with store.conversation(chat, 1) as conv:
            conv.send({"text": chat})
        harness.clock.advance(seconds=1)
    # "first": committed, then the process died before its sender claimed it.
    # "second": claimed by a sender that died; "third": deferred; "fourth": being sent.
    await store.beat("dead")
    await store.claim_outbox("second", "dead", LEASE)
    await store.defer_outbox("third", harness.clock() + timedelta(minutes=5))
    harness.clock.advance(seconds=10)
    await store.beat("alive")
    await store.claim_outbox("fourth", "alive", LEASE)
    assert await store.pending_chats(harness.clock(), grace) == ["first"]

    harness.clock.advance(seconds=10)  # "dead" silent for 20 s, its lease not ended
    await store.beat("alive")
    assert await store.pending_chats(harness.clock(), grace) == ["first", "second"]
    harness.clock.advance(minutes=5)  # the deferral ends, and the live sender's lease
    await store.beat("alive")
    assert await store.pending_chats(harness.clock(), grace) == ["first", "second", "third", "fourth"]
    assert await store.pending_chats(harness.clock(), grace, limit=2) == ["first", "second"]
    # Just committed: its own sender is about to claim it.
    async with store.conversation("fifth", 1) as conv:
        conv.send({"text": "fifth"})
    assert "fifth" not in await store.pending_chats(harness.clock(), grace)
    for chat in ("first", "second"):
        for message in await store.claim_outbox(chat, "alive", LEASE):
            await store.mark_sent(message.id)
    assert await store.pending_chats(harness.clock(), grace) == ["third", "fourth"]


async def test_probe_write_commits(store: Store, harness: Harness) -> None:
    await store.probe_write()
    harness.clock.advance(seconds=5)
    await store.probe_write()
    other = await harness.open_new()
    await other.probe_write()
    rows = await harness.query("SELECT name, at FROM heartbeat")
    assert len(rows) == 1 and rows[0][0] == "probe"
    assert str(harness.clock().year) in str(rows[0][1])
    await store.close()
    with pytest.raises((StoreUnavailable, RuntimeError)):
        await store.probe_write()


async def test_events_since(store: Store, harness: Harness) -> None:
    await store.record_event("started", "chat-1", {"flow": "cardholder"})
    harness.clock.advance(hours=1)
    since = harness.clock()
    async with store.conversation("chat-2", 1) as conv:
        conv.count("started", {"flow": "huabei"})
        conv.count("diagnosed", {"cause": "missed_reminder"})
    harness.clock.advance(hours=1)
    await store.record_event("diagnosed", "chat-1", {"cause": "other_debts"})

    everything = await store.events()
    assert [(e.name, e.chat_hash) for e in everything] == [
        ("started", hashed("chat-1")),
        ("started", hashed("chat-2")),
        ("diagnosed", hashed("chat-2")),
        ("diagnosed", hashed("chat-1")),
    ]
    recent = await store.events(since)
    assert [(e.name, e.data, e.created_at) for e in recent] == [
        ("started", {"flow": "huabei"}, since),
        ("diagnosed", {"cause": "missed_reminder"}, since),
        ("diagnosed", {"cause": "other_debts"}, since + timedelta(hours=1)),
    ]
    assert all(e.created_at.utcoffset() == timedelta(0) for e in recent)
    assert await store.events(harness.clock() + timedelta(seconds=1)) == []
    # stats() counts the same events.
    assert (await store.stats())["event:diagnosed"] == 2
