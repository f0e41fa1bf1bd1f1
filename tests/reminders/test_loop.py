"""Reminders end to end below the channel, with a driven clock: set in a conversation,
fired by the loop through the store into the outbox, sent by the outbox's sender.

Both stores (SQLite file; PostgreSQL when TEST_DATABASE_URL is set). Nothing sleeps:
the test moves the clock and runs the loop's rounds itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from telegram.error import Forbidden

from bot.channels.telegram.delivery import Delivery
from bot.channels.telegram.effects import Effect, SendText
from bot.engine.engine import Engine
from bot.engine.events import Command, CommandName, Said
from bot.engine.turn import Msg, Turn
from bot.i18n.catalog import Localizer
from bot.reminders.desk import ReminderDesk
from bot.reminders.firing import Firer, FiringPolicy, Notice
from bot.reminders.loop import ReminderLoop
from bot.reminders.planning import Planner
from bot.store.base import Store
from tests.store.conftest import Harness

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Channel:
    """Renders like the Telegram channel (the outbox's text payloads), and records what
    the sender carried out, by chat."""

    def __init__(self, localizer: Localizer) -> None:
        self.localizer = localizer
        self.sent: list[tuple[int, str]] = []
        self.blocked: set[int] = set()

    def render(self, chat_key: str, item: Notice | Turn) -> list[dict[str, Any]]:
        if isinstance(item, Notice):
            text = self.localizer.text(item.text, item.locale)
            data = f"r:p:{item.paid.reminder_id}:{item.paid.due:%Y%m%d}"
            return [
                {"kind": "text", "html": text, "buttons": [[self.localizer.text(item.paid.label, item.locale), data]]}
            ]
        return [{"kind": "text", "html": f"turn at {item.session.state}", "buttons": []}]

    def reply(self, locale: str) -> Any:
        return lambda msg, session: [{"kind": "text", "html": self.localizer.text(msg, locale), "buttons": []}]

    async def perform(self, chat_id: int, effect: Effect) -> None:
        if chat_id in self.blocked:
            raise Forbidden("Forbidden: bot was blocked by the user")
        assert isinstance(effect, SendText)
        self.sent.append((chat_id, effect.html))


class Rig:
    """The advisor's pieces around one store: planner, loop, desk, sender."""

    def __init__(self, store: Store, harness: Harness, engine: Engine, localizer: Localizer) -> None:
        self.store = store
        self.harness = harness
        self.engine = engine
        self.channel = Channel(localizer)
        self.firer = Firer(lambda: engine, self.channel.render, FiringPolicy(late_window=timedelta(hours=6)))
        self.woken: list[str] = []
        self.loop = ReminderLoop(store, self.firer, self.woken.append, clock=harness.clock, batch=50)
        self.desk = ReminderDesk(store, lambda: engine, clock=harness.clock)
        self.update_id = 100

    def at(self, *parts: int) -> None:
        """Set the clock to a wall-clock time in Shanghai."""
        self.harness.clock.now = datetime(*parts, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]

    async def remind(self, chat: str, *answers: str, locale: str = "en") -> Turn:
        """/remind and its answers, as the advisor commits them (planning included)."""
        turn = self.engine.handle(self.engine.new_session(locale), Command(CommandName.REMIND))
        for answer in answers:
            turn = self.engine.handle(turn.session, Said(answer))
        async with self.store.conversation(chat) as conv:
            turn, changes = Planner(self.engine).plan(turn, self.harness.clock())
            conv.save(turn.session)
            for change in changes:
                conv.remind(change)
        return turn

    async def deliver(self) -> Delivery:
        """Send whatever is in the outbox, as the sender does after a commit or at start-up."""
        delivery = Delivery(self.store, self.channel.perform, on_blocked=self.desk.switch_off, clock=self.harness.clock)
        await delivery.sweep(timedelta(0))
        await delivery.idle()
        return delivery

    def next_update(self) -> int:
        self.update_id += 1
        return self.update_id


@pytest.fixture
def rig(store: Store, harness: Harness, engine: Engine, localizer: Localizer) -> Rig:
    return Rig(store, harness, engine, localizer)


async def test_a_year_of_reminders_for_the_31st_in_a_leap_year(rig: Rig) -> None:
    rig.at(2024, 1, 20, 10, 0)
    await rig.remind("tg:31", "yes", "31", "3 days before", "09:00", "no")
    sent_on: list[date] = []
    for _ in range(13):
        [row] = await rig.store.reminders("tg:31")
        rig.harness.clock.now = row.due_at - timedelta(seconds=1)
        assert (await rig.loop.tick()).claimed == 0  # not a second early
        rig.harness.clock.now = row.due_at
        assert (await rig.loop.tick()).claimed == 1
        sent_on.append(row.due_at.astimezone(SHANGHAI).date())
        assert row.due_at.astimezone(SHANGHAI).hour == 9
    assert sent_on == [
        date(2024, 1, 28),
        date(2024, 2, 26),  # three days before 29 February
        date(2024, 3, 28),
        date(2024, 4, 27),  # three days before 30 April
        date(2024, 5, 28),
        date(2024, 6, 27),
        date(2024, 7, 28),
        date(2024, 8, 28),
        date(2024, 9, 27),
        date(2024, 10, 28),
        date(2024, 11, 27),
        date(2024, 12, 28),
        date(2025, 1, 28),
    ]
    await rig.deliver()
    texts = [text for _, text in rig.channel.sent]
    assert len(texts) == 13
    assert texts[1].startswith("Reminder: your repayment is due on Thu, Feb 29, 2024, in 3 days.")
    assert texts[3].startswith("Reminder: your repayment is due on Tue, Apr 30, 2024, in 3 days.")


async def test_time_zones_on_one_loop(rig: Rig, localizer: Localizer) -> None:
    rig.at(2025, 3, 1, 12, 0)
    await rig.remind("tg:1", "yes", "15", "3 days before", "09:00", "no")  # Shanghai
    await rig.remind("tg:2", "change", "london", "15", "3 days before", "09:00", "no")
    await rig.remind("tg:3", "change", "sydney", "15", "3 days before", "09:00", "no")
    order = []
    for _ in range(3):
        rows = [r for chat in ("tg:1", "tg:2", "tg:3") for r in await rig.store.reminders(chat)]
        soonest = min(rows, key=lambda r: r.due_at)
        rig.harness.clock.now = soonest.due_at
        fired = await rig.loop.tick()
        order.append((fired.chats, soonest.due_at))
    # 09:00 on 12 March: Sydney (UTC+11) first, then Shanghai (UTC+8), then London (UTC+0).
    assert order == [
        (("tg:3",), datetime(2025, 3, 11, 22, tzinfo=UTC)),
        (("tg:1",), datetime(2025, 3, 12, 1, tzinfo=UTC)),
        (("tg:2",), datetime(2025, 3, 12, 9, tzinfo=UTC)),
    ]


async def test_after_an_outage_only_recent_reminders_go_late(rig: Rig) -> None:
    rig.at(2025, 3, 1, 12, 0)
    await rig.remind("tg:1", "yes", "15", "3 days before", "09:00", "yes")  # 12th and 15th
    await rig.remind("tg:2", "yes", "12", "1 day before", "08:00", "no")  # 11th
    # Down from 10 March until 12 March 13:00: tg:1's 09:00 reminder is 4 hours late
    # (sent, once); tg:2's of the 11th is a day late (skipped for next month's).
    rig.at(2025, 3, 12, 13, 0)
    fired = await rig.loop.tick()
    assert fired.claimed == 2 and fired.chats == ("tg:1",)
    assert (await rig.loop.tick()).claimed == 0  # nothing fires twice
    await rig.deliver()
    assert [chat for chat, _ in rig.channel.sent] == [1]
    [due_day] = await rig.store.reminders("tg:1")
    [april] = await rig.store.reminders("tg:2")
    assert due_day.due_at == datetime(2025, 3, 15, 1, tzinfo=UTC)
    assert april.due_at == datetime(2025, 4, 11, 0, tzinfo=UTC)


async def test_a_restart_between_claim_and_send_loses_nothing(rig: Rig, harness: Harness) -> None:
    rig.at(2025, 3, 1, 12, 0)
    for chat in range(1, 21):
        await rig.remind(f"tg:{chat}", "yes", "15", "3 days before", "09:00", "no")
    rig.at(2025, 3, 12, 9, 0)
    assert (await rig.loop.tick()).claimed == 20
    # The process dies here: claimed and committed to the outbox, nothing sent yet.
    await rig.store.close()
    restarted = await harness.open_new()
    rig.store = restarted
    rig.loop = ReminderLoop(restarted, rig.firer, rig.woken.append, clock=harness.clock)
    rig.desk = ReminderDesk(restarted, lambda: rig.engine, clock=harness.clock)
    assert (await rig.loop.tick()).claimed == 0  # the new process fires nothing again...
    await rig.deliver()  # ...its sender's start-up sweep sends what the old one left
    assert sorted(chat for chat, _ in rig.channel.sent) == list(range(1, 21))
    await rig.deliver()  # and only once
    assert len(rig.channel.sent) == 20


async def test_a_blocked_user_has_reminders_and_checkins_switched_off(rig: Rig) -> None:
    rig.at(2025, 3, 1, 12, 0)
    await rig.remind("tg:1", "yes", "15", "3 days before", "09:00", "no")
    await rig.remind("tg:2", "yes", "15", "3 days before", "09:00", "no")
    async with rig.store.conversation("tg:1") as conv:
        turn = rig.engine.handle(conv.session, Command(CommandName.CHECKIN))  # type: ignore[arg-type]
        conv.save(turn.session)
    rig.channel.blocked.add(1)
    rig.at(2025, 3, 12, 9, 0)
    await rig.loop.tick()
    delivery = await rig.deliver()
    assert delivery.counts.blocked_chats == 1
    assert await rig.store.reminders("tg:1") == []  # switched off
    assert len(await rig.store.reminders("tg:2")) == 1
    assert [chat for chat, _ in rig.channel.sent] == [2]


async def test_paid_thanks_stops_that_months_due_day_reminder(rig: Rig) -> None:
    rig.at(2025, 3, 1, 12, 0)
    await rig.remind("tg:1", "yes", "15", "3 days before", "09:00", "yes")
    rig.at(2025, 3, 12, 9, 0)
    await rig.loop.tick()
    await rig.deliver()
    assert len(rig.channel.sent) == 1
    [row] = await rig.store.reminders("tg:1")
    assert row.payload["moment"] == "due"
    # The person pays and presses the button (Telegram delivers the press twice).
    update = rig.next_update()
    assert await rig.desk.paid("tg:1", row.id, date(2025, 3, 15), rig.channel.reply("en"), update)
    assert not await rig.desk.paid("tg:1", row.id, date(2025, 3, 15), rig.channel.reply("en"), update)
    await rig.deliver()
    assert rig.channel.sent[-1] == (1, "Well done! No more reminders about this month's repayment.")
    [moved] = await rig.store.reminders("tg:1")
    assert moved.due_at == datetime(2025, 4, 12, 1, tzinfo=UTC)  # the 15th's reminder is gone
    rig.at(2025, 3, 15, 9, 0)
    assert (await rig.loop.tick()).claimed == 0
    # Next month, both come again.
    rig.at(2025, 4, 12, 9, 0)
    assert (await rig.loop.tick()).chats == ("tg:1",)


async def test_reminders_listed_and_one_cancelled(rig: Rig, localizer: Localizer) -> None:
    rig.at(2025, 3, 1, 12, 0)
    await rig.remind("tg:1", "yes", "15", "3 days before", "09:00", "yes")
    await rig.remind("tg:1", "yes", "3", "A week before", "20:00", "no")
    listed = await rig.desk.listing("tg:1")
    lines = [localizer.text(item.line, "en") for item in listed]
    assert lines == [
        "1. Repayment due on day 15 of each month: 3 days before and on the day, at 09:00 (Asia/Shanghai). "
        "Next: Wed, Mar 12, 2025, 09:00.",
        "2. Repayment due on day 3 of each month: 7 days before, at 20:00 (Asia/Shanghai). "
        "Next: Thu, Mar 27, 2025, 20:00.",
    ]
    first = listed[0].reminder
    assert await rig.desk.cancel("tg:1", first.id, 1, rig.channel.reply("en"), rig.next_update())
    assert await rig.desk.cancel("tg:2", listed[1].reminder.id, 2, rig.channel.reply("en"), rig.next_update())
    await rig.deliver()
    assert sorted(rig.channel.sent) == [(1, "Cancelled: 1."), (2, "That reminder no longer exists.")]
    assert [r.id for r in await rig.store.reminders("tg:1")] == [listed[1].reminder.id]
    rig.at(2025, 3, 12, 9, 0)
    assert (await rig.loop.tick()).claimed == 0  # the cancelled one never comes


async def test_a_checkin_asked_and_left_unanswered_counts_as_no_answer(rig: Rig) -> None:
    rig.at(2025, 3, 1, 12, 0)
    async with rig.store.conversation("tg:5") as conv:
        from bot.engine.session import Session

        session = Session("cardholder", "offer_checkin", "en", {"product": "credit_card", "days_overdue": 45})
        turn = rig.engine.handle(session, Said("yes"))
        turn, changes = Planner(rig.engine).plan(turn, rig.harness.clock())
        conv.save(turn.session)
        for change in changes:
            conv.remind(change)
    rig.at(2025, 3, 4, 9, 0)
    assert (await rig.loop.tick()).chats == ("tg:5",)
    moved = await rig.store.load("tg:5")
    assert moved is not None and moved.state == "followup"
    rig.at(2025, 3, 11, 9, 0)
    assert (await rig.loop.tick()).claimed == 1
    assert (await rig.store.stats()).get("event:followup.no_answer") == 1
    assert await rig.store.reminders("tg:5") == []


def test_messages_are_msgs(engine: Engine) -> None:
    assert isinstance(engine.message("reminder_paid_button"), Msg)
