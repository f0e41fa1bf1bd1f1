"""Telegram answers 500 (not sent) to the second message of a turn of several: the
user must get the first message once, and the turn must still complete, in order.

Before the outbox, the 500 failed the update, Telegram delivered it again, and the
whole turn was sent again: the first message twice (issue 11).
"""

from __future__ import annotations

from tests.support.durability_support import Bots, FaultyStandIn, SqliteDatabase, visible
from tests.support.fault_support import (
    Record,
    assert_exactly_once,
    converse,
    deliver,
    extra_messages,
    reference,
    settle,
)
from tests.support.tg_harness import message_update, new_chat_id

# Typed answers from /start to the plan, then "What to say": the phrases for the bank,
# one message each so each can be copied with one tap.
TO_THE_PLAN = ("/start", "1", "credit card", "45", "15000", "skip", "2", "2", "2", "1", "1")
WHAT_TO_SAY = "2"


def test_500_on_the_second_message_sends_the_first_once_and_completes_the_turn(
    sqlite_bots: Bots, standin: FaultyStandIn, sqlite_database: SqliteDatabase, figures: Record
) -> None:
    hook = sqlite_bots.start()
    transcript = reference(hook, standin, sqlite_database, [*TO_THE_PLAN, WHAT_TO_SAY])
    turn = transcript.turns[-1]
    assert len(turn) >= 2, "the phrases come as several messages"
    chat = new_chat_id()
    converse(hook, chat, TO_THE_PLAN)
    settle(standin, sqlite_database, {chat: len(transcript.replies) - len(turn)})

    standin.fail_call("sendMessage", 2, chat_id=chat)
    delivery = deliver(hook, message_update(chat, WHAT_TO_SAY), timeout=30)
    settle(standin, sqlite_database, {chat: len(transcript.replies)})

    server_errors = [r for r in standin.refused() if r[1].get("chat_id") == chat and r[2] == "Internal Server Error"]
    seen = visible(standin.messages(chat))
    figures("messages in the turn", len(turn))
    figures("deliveries of the update", len(delivery.statuses))
    figures("copies of the turn's first message", seen.count(turn[0]))
    figures("extra messages", extra_messages(standin, chat, transcript.replies))

    assert len(server_errors) == 1, "the fault never happened"
    assert delivery.acknowledged
    assert_exactly_once(standin, chat, transcript.replies)
