"""Two webhook replicas on one PostgreSQL database, 50 updates of ONE chat sent to them
at the same time: every update is applied exactly once, one after the other, never two
from the same old state. The end state, and everything the user saw, is what the same
updates give when applied in order (the order the store committed them).

All 50 are posted at once. Each process keeps a chat's backlog to a few updates in
flight and refuses the excess with 503 (and one "one moment" notice), as it does
against floods; the test then does what Telegram does with a refused update: delivers
it again until it is acknowledged.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from bot.engine.engine import Engine
from bot.engine.session import Session
from bot.i18n.catalog import Localizer
from tests.support.durability_support import (
    SECRET,
    Bots,
    Database,
    FaultyStandIn,
    Texts,
    event_for,
    handled,
    replay,
    visible,
)
from tests.support.tg_harness import TgUser, Webhook, message_update

BURST = 50


def _post(hook: Webhook, update: dict[str, object]) -> int:
    with httpx.Client(timeout=60) as client:
        return client.post(hook.url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}).status_code


def _send_concurrently(hooks: list[Webhook], updates: list[dict[str, object]]) -> None:
    """Post every update at once, alternating between `hooks`; like Telegram, post again
    (to the same replica) whatever was refused with 503, until every one is acknowledged."""

    def deliver(index: int, update: dict[str, object]) -> int:
        for _ in range(200):
            status = _post(hooks[index % len(hooks)], update)
            if status != 503:
                return status
        return 503

    with ThreadPoolExecutor(len(updates)) as pool:
        statuses = list(pool.map(deliver, range(len(updates)), updates))
    assert statuses == [200] * len(updates)


def _burst_on_two_replicas(
    bots: Bots, standin: FaultyStandIn, database: Database, content: tuple[Engine, Localizer], texts: list[str]
) -> tuple[Session, int]:
    """A user at the days question; `texts` sent as one concurrent burst to two replicas;
    then the end state and the user's chat are checked against an in-order replay.
    Returns the final session and how many messages the burst's replies took."""
    engine, localizer = content
    first, second = bots.start_together(2)
    user = TgUser(first, standin, "en")
    key = f"tg:{user.chat_id}"
    for text in ("/start", "1", "credit card"):
        user.send(text)
    assert user.last().text == Texts(content).ask("cardholder", "days")
    stored = database.session(key)
    assert stored is not None
    start, _ = stored
    applied_before = database.processed(key)
    ok_before = {hook.url: handled(hook, "ok") for hook in (first, second)}
    seen = len(user.messages())

    updates = [message_update(user.chat_id, text) for text in texts]
    _send_concurrently([first, second], updates)
    first.wait_delivered(user.chat_id)  # the replies are sent after the commits

    # Every update applied once: processed once each, and nothing else.
    committed = database.processed(key)[len(applied_before) :]
    assert database.processed(key)[: len(applied_before)] == applied_before
    text_of = {update["update_id"]: text for update, text in zip(updates, texts, strict=True)}
    assert sorted(committed) == sorted(text_of), "each update committed exactly once"

    # The same updates applied in the order the store committed them.
    expected, expected_replies = replay(engine, localizer, start, [event_for(text_of[u]) for u in committed])
    stored = database.session(key)
    assert stored is not None
    final, final_version = stored
    assert final == expected
    assert final_version == expected.version
    # The user saw every reply once, in that order: each chat is serialised, so the order
    # the replies reached Telegram is the commit order.
    # ("One moment" comes in the conversation's language of the moment.)
    one_moment = {Texts(content).message("one_moment", locale) for locale in ("en", "zh_CN")}
    assert [reply for reply in visible(user.messages()[seen:]) if reply[0] not in one_moment] == expected_replies

    # Both replicas did part of the work, and none failed or retried anything ("dropped"
    # updates were refused with 503 and delivered again, so they count among the "ok").
    done = {hook.url: handled(hook, "ok") - ok_before[hook.url] for hook in (first, second)}
    assert all(count > 0 for count in done.values()), done
    assert sum(done.values()) == len(updates)
    for hook in (first, second):
        assert handled(hook, "retry") == handled(hook, "error") == 0
        assert handled(hook, "duplicate") == 0
    return final, len(expected_replies)


def test_fifty_language_switches_on_two_replicas(
    pg_bots: Bots, standin: FaultyStandIn, pg_database: Database, content: tuple[Engine, Localizer]
) -> None:
    """Each /language toggles zh_CN/en and bumps the version: after 50 applied exactly
    once, the language is back where it was and the version is 50 higher, whatever the
    order; a lost or doubled update would show."""
    final, replies = _burst_on_two_replicas(pg_bots, standin, pg_database, content, ["/language"] * BURST)
    assert replies == BURST, "one reply per update"
    assert final.locale == "en"
    assert (final.flow, final.state) == ("cardholder", "days")
    assert final.slots == {"role": "cardholder", "product": "credit_card"}
    # /start, 1, credit card: version 3, then one per /language.
    assert final.version == 3 + BURST


def test_fifty_answers_and_backs_on_two_replicas_match_the_in_order_replay(
    pg_bots: Bots, standin: FaultyStandIn, pg_database: Database, content: tuple[Engine, Localizer]
) -> None:
    """25 typed answers (1..25, a different value each) and 25 /back, interleaved: the
    end state depends on the order, and must be the in-order replay's."""
    texts = [text for number in range(1, BURST // 2 + 1) for text in (str(number), "/back")]
    _burst_on_two_replicas(pg_bots, standin, pg_database, content, texts)
