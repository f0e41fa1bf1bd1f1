"""Telegram accepts a message but its answer comes late (a slow network, a busy data
centre): 5% of sends answered after 7 s, beyond PTB's default 5 s timeout. The bot
cannot tell a late answer from a lost message; what matters is that it does not send
the message again while Telegram's answer is still on its way.

Before the outbox, the timeout failed the update (503), Telegram delivered it again
and the reply was sent a second time (issue 11: 16 of 50 chats got a duplicate).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.support.durability_support import Bots, FaultyStandIn, SqliteDatabase
from tests.support.fault_support import (
    Record,
    assert_exactly_once,
    converse,
    extra_messages,
    reference,
    settle,
)
from tests.support.tg_harness import new_chat_id

CHATS = 50
SCRIPT = ("/start", "1", "credit card")
LATE_SECONDS = 7.0
LATE_SHARE = 0.05
SEED = 11


def test_late_answers_cause_no_duplicate(
    sqlite_bots: Bots, standin: FaultyStandIn, sqlite_database: SqliteDatabase, figures: Record
) -> None:
    hook = sqlite_bots.start()
    expected = reference(hook, standin, sqlite_database, SCRIPT).replies
    chats = [new_chat_id() for _ in range(CHATS)]

    standin.answer_late(LATE_SECONDS, probability=LATE_SHARE, seed=SEED)
    with ThreadPoolExecutor(CHATS) as pool:
        conversations = list(pool.map(lambda chat: converse(hook, chat, SCRIPT, timeout=30), chats))
    # Long enough for a chat whose replies were all late, one after the other.
    settle(standin, sqlite_database, {chat: len(expected) for chat in chats}, timeout=len(SCRIPT) * LATE_SECONDS + 10)
    standin.clear_faults()

    extra = {chat: extra_messages(standin, chat, expected) for chat in chats}
    redelivered = sum(len(delivery.statuses) - 1 for deliveries in conversations for delivery in deliveries)
    figures("sends answered late", standin.late_answered)
    figures("updates redelivered", redelivered)
    figures("chats with a duplicate", sum(1 for count in extra.values() if count > 0))
    figures("duplicate messages", sum(count for count in extra.values() if count > 0))

    assert standin.late_answered > 0, "the fault never happened"
    for chat in chats:
        assert_exactly_once(standin, chat, expected)
