"""A webhook process killed with SIGKILL loses nothing: neither the answers already
given, nor the update it was in the middle of handling (Telegram delivers it again,
and it is applied once). A kill after the commit, with the reply in the outbox, is
tests/faults/test_crash_window.py."""

from __future__ import annotations

import time

from bot.engine.engine import Engine
from bot.i18n.catalog import Localizer
from tests.support.durability_support import Bots, Database, FaultyStandIn, Texts, post_in_background, user_at_amount
from tests.support.tg_harness import message_update


def test_sigkill_mid_conversation_loses_nothing(
    bots: Bots, standin: FaultyStandIn, database: Database, content: tuple[Engine, Localizer]
) -> None:
    texts = Texts(content)
    first = bots.start()
    user, key, version = user_at_amount(first, standin, texts, database)

    # 1. Killed between two messages: the next process continues where the user was.
    second = bots.restart(first)
    user.hook = second
    user.send("15000")
    assert user.last().text.endswith(texts.ask("cardholder", "story"))  # maybe after a read-back
    stored = database.session(key)
    assert stored is not None
    at_story, story_version = stored
    assert at_story.state == "story"
    assert at_story.slots == {"role": "cardholder", "product": "credit_card", "days_overdue": 45, "amount": 15000}
    assert story_version == version + 1

    # 2. Killed in the middle of an update, while committing it (another client holds
    # the lock the commit waits for): nothing of it is committed, nothing is sent (the
    # reply waits in the same transaction), and Telegram never got its 200.
    update = message_update(user.chat_id, "skip")
    seen = len(user.messages())
    with database.hold_writes():
        posted = post_in_background(second, update)
        time.sleep(1.0)  # the update is applied and its commit waits for the lock
        bots.kill(second)
    third = bots.start()
    posted.join()
    assert posted.response is None, "a killed process cannot have acknowledged the update"
    assert posted.error is not None
    assert database.session(key) == (at_story, story_version), "nothing of the update was committed"
    assert update["update_id"] not in database.processed(key)
    assert database.count("outbox") == 0, "its reply was not committed either"
    assert len(user.messages()) == seen

    # Telegram delivers it again, with the same update id, to the new process.
    user.hook = third
    assert third.post(update).status_code == 200
    third.wait_delivered(user.chat_id)
    assert [m.text for m in user.messages()[seen:]] == [texts.ask("cardholder", "income")]
    stored = database.session(key)
    assert stored is not None
    at_income, income_version = stored
    assert at_income.state == "income"
    assert income_version == story_version + 1, "applied exactly once"
    assert "story" not in at_income.slots  # skipped
    assert database.processed(key).count(update["update_id"]) == 1

    # And once more (say the acknowledgement was lost): acknowledged, not applied again.
    assert third.post(update).status_code == 200
    third.wait_delivered(user.chat_id)
    assert len(user.messages()) == seen + 1
    assert database.session(key) == (at_income, income_version)

    user.send("2")  # income not stable
    assert user.last().text == texts.ask("cardholder", "reminder")
    stored = database.session(key)
    assert stored is not None
    final, final_version = stored
    assert final.state == "reminder"
    assert final.slots == {
        "role": "cardholder",
        "product": "credit_card",
        "days_overdue": 45,
        "amount": 15000,
        "income_stable": False,
    }
    assert final_version == income_version + 1
    # Every update the user sent was applied once: /start, 1, credit card, 45, 15000, skip, 2.
    processed = database.processed(key)
    assert len(processed) == len(set(processed)) == 7
