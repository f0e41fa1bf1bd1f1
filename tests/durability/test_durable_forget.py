"""`/forget` leaves no row, in any table and any column, that names the user: not their
session, processed updates or reminders, and not their statistics events (kept under a
keyed hash of the chat, so the hash must go too). Other users keep everything."""

from __future__ import annotations

from bot.engine.engine import Engine
from bot.i18n.catalog import Localizer
from tests.support.durability_support import Bots, Database, FaultyStandIn, Texts
from tests.support.tg_harness import TgUser

# Typed answers from /start to the finished plan (which records statistics events):
# cardholder, credit card, 45 days, ¥15,000, no story, income not stable, no reminder,
# no impulse buying, no other loans, keeps a budget.
TO_THE_PLAN = ("/start", "1", "credit card", "45", "15000", "skip", "2", "2", "2", "1", "1")


def test_forget_leaves_no_row_with_the_user(
    bots: Bots, standin: FaultyStandIn, database: Database, content: tuple[Engine, Localizer]
) -> None:
    texts = Texts(content)
    hook = bots.start()
    user, other = TgUser(hook, standin, "en"), TgUser(hook, standin, "en")
    for someone in (user, other):
        for text in TO_THE_PLAN:
            someone.send(text)
        assert texts.message("finished") not in someone.last().text  # the plan itself, not "complete"
        database.add_reminder(f"tg:{someone.chat_id}")
    key, other_key = f"tg:{user.chat_id}", f"tg:{other.chat_id}"
    needle, hashed = str(user.chat_id), database.chat_hash(key)
    other_needle, other_hashed = str(other.chat_id), database.chat_hash(other_key)

    # Before: the user is in the session, processed-update and reminder tables by chat,
    # and in the events by hash.
    mentions = {table for table, _ in database.rows_mentioning(needle)}
    assert mentions == {"sessions", "processed_updates", "reminders"}
    user_events = database.count("events", "chat_hash = ?", hashed)
    assert user_events >= 1, "finishing the plan records an event"
    assert {table for table, _ in database.rows_mentioning(hashed)} == {"events"}
    events_before = database.count("events")

    user.send("/forget")
    assert user.last().text == texts.message("forget_confirm")
    user.press(texts.message("forget_button"))
    assert user.last().text == texts.message("forget_done")

    # After: not one row anywhere contains the chat id or the chat's hash.
    assert database.rows_mentioning(needle, hashed) == []
    assert database.session(key) is None
    assert database.count("events") == events_before - user_events

    # The other user keeps everything: the scan above was not vacuous.
    assert {table for table, _ in database.rows_mentioning(other_needle)} == {
        "sessions",
        "processed_updates",
        "reminders",
    }
    assert database.count("events", "chat_hash = ?", other_hashed) >= 1

    # The erased user can start again from nothing.
    user.send("/start")
    assert user.last().text.endswith(texts.ask("start", "role"))
    stored = database.session(key)
    assert stored is not None
    assert stored[0].slots == {}
    assert stored[1] == 1
