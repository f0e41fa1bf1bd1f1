"""Telegram tells the bot to wait before writing to ONE chat again (429 with
`retry_after`, its per-chat flood control). That chat waits; every other chat is
answered as usual; and the waiting chat gets each of its replies once, in order, after
the wait, without the bot knocking again and again before it is over.

Before, PTB's rate limiter paused every request of the bot for the whole
`retry_after`: with 20 s for one chat, every other chat waited 19.6 s (issue 11).
"""

from __future__ import annotations

import threading
import time

from tests.support.durability_support import Bots, FaultyStandIn, SqliteDatabase, wait_until
from tests.support.fault_support import (
    Record,
    assert_exactly_once,
    converse,
    deliver,
    deliver_all,
    reference,
    seconds_summary,
    settle,
)
from tests.support.tg_harness import message_update, new_chat_id

OTHERS = 20
SCRIPT = ("/start", "1")


def _refused_429(standin: FaultyStandIn, chat: int) -> int:
    return sum(1 for _, params, text in standin.refused() if params.get("chat_id") == chat and "Too Many" in text)


def test_one_chats_429_does_not_hold_up_the_others(
    sqlite_bots: Bots, standin: FaultyStandIn, sqlite_database: SqliteDatabase, figures: Record
) -> None:
    hook = sqlite_bots.start()
    expected = reference(hook, standin, sqlite_database, SCRIPT[:1]).replies
    limited = new_chat_id()
    standin.flood_wait(limited, 20)
    flood_ends = time.monotonic() + 20
    # The limited chat's update, on a thread of its own: before, its POST waited too.
    threading.Thread(target=deliver, args=(hook, message_update(limited, SCRIPT[0])), daemon=True).start()
    wait_until(lambda: _refused_429(standin, limited) > 0, "Telegram to refuse the limited chat")

    others = [new_chat_id() for _ in range(OTHERS)]
    deliveries = deliver_all(hook, [message_update(chat, SCRIPT[0]) for chat in others], timeout=40)
    settle(standin, sqlite_database, {chat: len(expected) for chat in others}, timeout=40)
    delays = [
        standin.calls("sendMessage", chat)[-1].at - delivery.started
        for chat, delivery in zip(others, deliveries, strict=True)
    ]
    figures("other chats' reply delay", seconds_summary(delays))
    figures("429s to the limited chat", _refused_429(standin, limited))

    for chat in others:
        assert_exactly_once(standin, chat, expected)
    assert max(standin.calls("sendMessage", chat)[-1].at for chat in others) < flood_ends, (
        "the other chats waited for the limited one"
    )
    assert standin.messages(limited) == [], "the limited chat's reply waits for the end of its retry_after"
    assert _refused_429(standin, limited) == 1, "nobody knocks again before the retry_after is over"


def test_the_limited_chat_gets_each_reply_once_after_its_wait(
    sqlite_bots: Bots, standin: FaultyStandIn, sqlite_database: SqliteDatabase, figures: Record
) -> None:
    hook = sqlite_bots.start()
    expected = reference(hook, standin, sqlite_database, SCRIPT).replies
    limited, other = new_chat_id(), new_chat_id()
    standin.flood_wait(limited, 3)
    flood_began = time.monotonic()
    flood_ends = flood_began + 3
    waiting = threading.Thread(target=converse, args=(hook, limited, SCRIPT), kwargs={"timeout": 30}, daemon=True)
    waiting.start()
    wait_until(lambda: _refused_429(standin, limited) > 0, "Telegram to refuse the limited chat")
    converse(hook, other, SCRIPT)
    settle(standin, sqlite_database, {other: len(expected)})
    other_done = standin.calls("sendMessage", other)[-1].at
    waiting.join(30)
    settle(standin, sqlite_database, {limited: len(expected)})
    first = standin.calls("sendMessage", limited)[0].at

    figures("limited chat's first reply, after a 3 s retry_after", f"{first - flood_began:.2f} s")
    figures("429s to the limited chat", _refused_429(standin, limited))

    assert_exactly_once(standin, limited, expected)
    assert_exactly_once(standin, other, expected)
    assert other_done < flood_ends, "the other chat waited for the limited one"
    assert _refused_429(standin, limited) == 1, "nobody knocks again before the retry_after is over"
