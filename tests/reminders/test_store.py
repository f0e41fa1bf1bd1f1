"""Reminder rows in both stores: planned in a conversation, fired in one transaction
(outbox, row, session and events together), once each, also with two stores at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from bot.engine.session import Session
from bot.store.base import (
    CloseReminders,
    DropReminder,
    Firing,
    MoveReminder,
    PlanReminder,
    Reminder,
    Store,
    StoreUnavailable,
)
from tests.store.conftest import Harness


def sent(text: str) -> dict[str, Any]:
    return {"kind": "text", "html": text, "buttons": []}


async def outbox_of(harness: Harness, chat: str) -> list[str]:
    rows = await harness.query("SELECT payload FROM outbox WHERE chat_key = ? ORDER BY id", chat)
    import json

    return [(json.loads(p) if isinstance(p, str) else p)["html"] for (p,) in rows]


async def test_planned_in_a_conversation_and_fired_once(store: Store, harness: Harness) -> None:
    now = harness.clock()
    async with store.conversation("chat-1", 1) as conv:
        conv.remind(PlanReminder("monthly", now + timedelta(minutes=1), {"n": 1}))
        conv.remind(PlanReminder("monthly", now + timedelta(days=30), {"n": 2}))
    [first, second] = await store.reminders("chat-1")
    assert (first.kind, first.payload, first.due_at) == ("monthly", {"n": 1}, now + timedelta(minutes=1))
    assert second.payload == {"n": 2}

    calls: list[int] = []

    def fire(row: Reminder, session: Session | None) -> Firing:
        calls.append(row.id)
        return Firing((sent(f"reminder {row.payload['n']}"),), "monthly", row.due_at + timedelta(days=30), row.payload)

    nothing = await store.fire_reminders(now, 10, fire)  # not due yet
    assert (nothing.claimed, calls) == (0, [])
    harness.clock.advance(minutes=1)
    fired = await store.fire_reminders(harness.clock(), 10, fire)
    assert (fired.claimed, fired.chats, calls) == (1, ("chat-1",), [first.id])
    assert await outbox_of(harness, "chat-1") == ["reminder 1"]
    advanced = {row.id: row for row in await store.reminders("chat-1")}[first.id]
    assert advanced.due_at == first.due_at + timedelta(days=30)
    # Fired and advanced in one transaction: a second round finds nothing due.
    again = await store.fire_reminders(harness.clock(), 10, fire)
    assert again.claimed == 0 and calls == [first.id]


async def test_fire_deletes_moves_the_conversation_and_counts(store: Store, harness: Harness) -> None:
    now = harness.clock()
    async with store.conversation("chat-1") as conv:
        conv.save(Session("cardholder", "after_plan", "en", {"product": "huabei"}, version=4))
        conv.remind(PlanReminder("checkin", now, {"zone": "Asia/Shanghai"}))
    await store.add_reminder("chat-2", now, {}, kind="asked")

    def fire(row: Reminder, session: Session | None) -> Firing:
        if row.kind == "checkin":
            assert session is not None and session.slots == {"product": "huabei"}
            moved = session.evolve(state="followup")
            return Firing((sent("did you?"),), "asked", now + timedelta(days=7), row.payload, session=moved)
        assert session is None  # chat-2 has no conversation
        return Firing(events=("followup.no_answer",))

    fired = await store.fire_reminders(now, 10, fire)
    assert fired.claimed == 2 and fired.chats == ("chat-1",)
    loaded = await store.load("chat-1")
    assert loaded is not None and (loaded.state, loaded.version) == ("followup", 5)
    [asked] = await store.reminders("chat-1")
    assert (asked.kind, asked.due_at) == ("asked", now + timedelta(days=7))
    assert await store.reminders("chat-2") == []
    assert (await store.stats()).get("event:followup.no_answer") == 1


async def test_changes_in_a_conversation(store: Store, harness: Harness) -> None:
    now = harness.clock()
    async with store.conversation("chat-1") as conv:
        conv.remind(PlanReminder("checkin", now + timedelta(days=3), {"n": 1}))
        conv.remind(PlanReminder("monthly", now + timedelta(days=9), {"n": 9}))
    async with store.conversation("chat-1") as conv:  # a new promise replaces the pending one
        conv.remind(PlanReminder("checkin", now + timedelta(days=4), {"n": 2}, replaces=True))
    kinds = [(r.kind, r.payload["n"]) for r in await store.reminders("chat-1")]
    assert kinds == [("checkin", 2), ("monthly", 9)]
    # An answer closes the asked check-in and is counted once, however often it is given.
    await store.add_reminder("chat-1", now + timedelta(days=7), {}, kind="asked")
    for _ in range(2):
        async with store.conversation("chat-1") as conv:
            conv.remind(CloseReminders("asked", "followup.agreed"))
    assert (await store.stats()).get("event:followup.agreed") == 1
    # Cancelled from the list: only the chat's own row.
    [checkin, monthly] = await store.reminders("chat-1")
    async with store.conversation("chat-2") as conv:
        conv.remind(DropReminder(checkin.id))  # not chat-2's: nothing happens
    async with store.conversation("chat-1") as conv:
        conv.remind(DropReminder(checkin.id))
    assert [r.id for r in await store.reminders("chat-1")] == [monthly.id]
    # Moved ("paid, thanks") only if still due when it was read; else nothing commits.
    async with store.conversation("chat-1") as conv:
        conv.remind(MoveReminder(monthly.id, monthly.due_at, now + timedelta(days=40), {"n": 40}))
    [moved] = await store.reminders("chat-1")
    assert (moved.due_at, moved.payload) == (now + timedelta(days=40), {"n": 40})
    with pytest.raises(StoreUnavailable):
        async with store.conversation("chat-1", 77) as conv:
            conv.save(Session("start", "role", "en"))
            conv.remind(MoveReminder(monthly.id, monthly.due_at, now + timedelta(days=70), {"n": 70}))
    assert (await store.reminders("chat-1"))[0].payload == {"n": 40}
    assert await store.load("chat-1") is None  # nothing of that block was committed


async def test_blocked_and_forgotten_chats_lose_their_reminders(store: Store, harness: Harness) -> None:
    now = harness.clock()
    for chat in ("chat-1", "chat-2"):
        async with store.conversation(chat) as conv:
            conv.save(Session("cardholder", "after_plan", "en"))
            conv.remind(PlanReminder("monthly", now, {}))
            conv.remind(PlanReminder("checkin", now, {}))
    assert await store.drop_reminders("chat-1") == 2  # the user blocked the bot
    assert await store.reminders("chat-1") == []
    async with store.conversation("chat-2") as conv:  # /forget
        conv.erase()
    assert await store.reminders("chat-2") == []
    assert await harness.count("reminders") == 0


async def test_two_stores_fire_disjoint_shares(store: Store, harness: Harness) -> None:
    """Two replicas (two store objects on one database) firing at once: every row once."""
    now = harness.clock()
    other = await harness.open_new()
    for number in range(300):
        await store.add_reminder(f"chat-{number}", now - timedelta(seconds=number % 7), {"n": number})
    fired_by: dict[str, Counter[int]] = {"a": Counter(), "b": Counter()}

    def firing(name: str) -> Any:
        def fire(row: Reminder, session: Session | None) -> Firing:
            fired_by[name][row.id] += 1
            return Firing((sent(f"{row.payload['n']}"),), "monthly", now + timedelta(days=30), row.payload)

        return fire

    async def replica(name: str, replica_store: Store) -> int:
        applied = 0
        while True:
            result = await replica_store.fire_reminders(now, 25, firing(name))
            applied += result.claimed
            if result.claimed == 0 and not await _due(replica_store, harness):
                return applied
            await asyncio.sleep(0)

    applied_a, applied_b = await asyncio.gather(replica("a", store), replica("b", other))
    assert applied_a + applied_b == 300
    assert await harness.count("outbox") == 300  # one message per row, none twice
    rows = await harness.query("SELECT chat_key, count(*) FROM outbox GROUP BY chat_key HAVING count(*) > 1")
    assert rows == []
    if harness.name == "postgres":
        # SKIP LOCKED: each claim took rows the other did not; nobody fired a row twice.
        assert not set(fired_by["a"]) & set(fired_by["b"])
        assert applied_a > 0 and applied_b > 0


async def _due(store: Store, harness: Harness) -> bool:
    rows = await harness.query("SELECT count(*) FROM reminders WHERE due_at <= ?", _param(harness))
    return int(rows[0][0]) > 0


def _param(harness: Harness) -> Any:
    now = harness.clock()
    return now.isoformat(timespec="microseconds") if harness.name == "sqlite" else now
