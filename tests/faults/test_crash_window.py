"""SIGKILL between the commit and the end of sending: the replies are committed in the
outbox, so the next process sends them.

The duplicate window, as the outbox sender names it (bot/channels/telegram/delivery.py,
and docs/design.md): a message is sent a second time only if the process died (or its
lease ran out, or the send timed out) after Telegram had accepted it and before it was
marked sent. So, killed with two replies in flight:

* one Telegram had not accepted yet (the stand-in holds the request before taking
  it): it arrives exactly once, sent by the next process;
* one Telegram had accepted, its answer still on the way (the stand-in holds the
  answer): it arrives at most twice, and nothing else of that chat is repeated.

The dead process's claims on both chats must not outlive it: the next process takes
them over once the dead owner's heartbeat is stale (the store's `owner_timeout`), not
after the whole lease. Both backends. Telegram's part is played faithfully: an update
the dead process had not acknowledged (no 200) is delivered again to the new one.
"""

from __future__ import annotations

import time

from tests.support.durability_support import (
    Bots,
    Database,
    FaultyStandIn,
    post_in_background,
    visible,
    wait_until,
)
from tests.support.fault_support import (
    Record,
    assert_exactly_once,
    converse,
    deliver,
    reference,
    settle,
)
from tests.support.tg_harness import message_update, new_chat_id

SCRIPT = ("/start", "1")
# The store's default `owner_timeout` (15 s), the sweep's second and some room.
TAKEN_OVER_WITHIN = 25.0


def test_killed_while_sending_each_reply_once_except_the_one_telegram_had_accepted(
    bots: Bots, standin: FaultyStandIn, database: Database, figures: Record
) -> None:
    hook = bots.start()
    expected = reference(hook, standin, database, SCRIPT).replies
    unaccepted, accepted = new_chat_id(), new_chat_id()
    for chat in (unaccepted, accepted):
        converse(hook, chat, SCRIPT[:1])
    settle(standin, database, {unaccepted: len(expected) - 1, accepted: len(expected) - 1})

    gate = standin.hold_next_send(unaccepted)  # held before Telegram takes it
    standin.answer_late(60, count=1, chat_id=accepted)  # taken and shown, answered only later
    updates = {chat: message_update(chat, SCRIPT[1]) for chat in (unaccepted, accepted)}
    posted = {chat: post_in_background(hook, update) for chat, update in updates.items()}
    gate.wait_entered()
    wait_until(lambda: standin.late_answered == 1, "Telegram to accept the other reply")
    committed = {chat: update["update_id"] in database.processed(f"tg:{chat}") for chat, update in updates.items()}

    successor = bots.restart(hook)  # SIGKILL, then a new process on the same database
    killed_at = time.monotonic()
    gate.release(refuse=True)  # the dead process's request never reached Telegram
    standin.release_held()
    acknowledged = {}
    for chat, post in posted.items():
        post.join()
        acknowledged[chat] = post.response is not None and post.response.status_code == 200
        if not acknowledged[chat]:
            assert deliver(successor, updates[chat], timeout=30).acknowledged  # Telegram delivers it again
    settle(standin, database, {unaccepted: len(expected), accepted: len(expected)}, timeout=TAKEN_OVER_WITHIN)
    taken_over = max(standin.calls("sendMessage", chat)[-1].at for chat in (unaccepted, accepted)) - killed_at

    seen = visible(standin.messages(accepted))
    figures("committed before the kill", sorted(committed.values()))
    figures("acknowledged before the kill", sorted(acknowledged.values()))
    figures("last reply sent (s after the next process was ready)", taken_over)
    figures("copies of the unaccepted reply", visible(standin.messages(unaccepted)).count(expected[-1]))
    figures("copies of the accepted reply", seen.count(expected[-1]))

    assert_exactly_once(standin, unaccepted, expected)
    assert seen in (expected, [*expected, expected[-1]]), f"only the accepted reply may repeat: {seen}"
