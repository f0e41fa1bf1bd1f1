"""The same update delivered more than once (Telegram re-delivers what it did not see
acknowledged, possibly to another replica, possibly while the first delivery is still
being handled) gives one reply and one transition."""

from __future__ import annotations

from bot.engine.engine import Engine
from bot.i18n.catalog import Localizer
from tests.support.durability_support import (
    Bots,
    Database,
    FaultyStandIn,
    Texts,
    handled,
    post_in_background,
)
from tests.support.tg_harness import TgUser, message_update


def test_same_update_twice_gives_one_reply_and_one_transition(
    bots: Bots, standin: FaultyStandIn, database: Database, content: tuple[Engine, Localizer]
) -> None:
    texts = Texts(content)
    # Two replicas on one database (SQLite too: several processes may share the file).
    first, second = bots.start_together(2)
    user = TgUser(first, standin, "en")
    key = f"tg:{user.chat_id}"
    user.send("/start")
    user.send("1")
    assert user.last().text == texts.ask("cardholder", "product")
    stored = database.session(key)
    assert stored is not None
    _, version = stored

    # One after the other: twice to the same process, once more to the other one.
    update = message_update(user.chat_id, "credit card")
    seen = len(user.messages())
    sends = len(standin.calls("sendMessage", user.chat_id))
    for hook in (first, first, second):
        assert hook.post(update).status_code == 200
    first.wait_delivered(user.chat_id)
    assert [m.text for m in user.messages()[seen:]] == [texts.ask("cardholder", "days")]
    assert len(standin.calls("sendMessage", user.chat_id)) == sends + 1
    stored = database.session(key)
    assert stored is not None
    at_days, days_version = stored
    assert (at_days.state, at_days.slots.get("product")) == ("days", "credit_card")
    assert days_version == version + 1
    assert database.processed(key).count(update["update_id"]) == 1

    # At the same time: the first delivery's reply is held on its way to Telegram (it
    # was committed with the update, and is sent after) while two more copies arrive,
    # one at each replica: both are duplicates, acknowledged without a second reply.
    gate = standin.hold_next_send(user.chat_id)
    update = message_update(user.chat_id, "45")
    seen = len(user.messages())
    sends = len(standin.calls("sendMessage", user.chat_id))
    posts = [post_in_background(first, update)]
    gate.wait_entered()
    posts += [post_in_background(first, update), post_in_background(second, update)]
    for posted in posts:
        posted.join()
        assert posted.response is not None and posted.response.status_code == 200
    gate.release()
    first.wait_delivered(user.chat_id)
    # One reply (after a typed number it may read the number back before the question).
    (reply,) = [m.text for m in user.messages()[seen:]]
    assert reply.endswith(texts.ask("cardholder", "amount"))
    assert len(standin.calls("sendMessage", user.chat_id)) == sends + 1
    stored = database.session(key)
    assert stored is not None
    at_amount, amount_version = stored
    assert (at_amount.state, at_amount.slots.get("days_overdue")) == ("amount", 45)
    assert amount_version == days_version + 1
    assert database.processed(key).count(update["update_id"]) == 1

    # Four copies were recognised as seen before (two of each burst).
    assert handled(first, "duplicate") + handled(second, "duplicate") == 4
    for hook in (first, second):
        assert handled(hook, "error") == handled(hook, "retry") == handled(hook, "dropped") == 0
