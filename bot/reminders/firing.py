"""What one due row becomes, decided without I/O: the `fire` the store calls in its claim.

* A monthly reminder due now (or late by at most the late-delivery window) becomes its
  message, with a "paid, thanks" button; either way the row moves to its next
  occurrence after now, so an outage ends in at most one late reminder per row and
  never in a burst of stale ones. A month marked paid keeps its remaining reminders away.
* A promised check-in moves the person's conversation to the check-in question
  (settings.yaml `reminders: checkin_state`) and sends it; the row then waits, as
  `asked`, for the answer. One missed by more than the window comes the next day at its
  time instead. Without a conversation to continue (erased, expired) it is dropped.
* An `asked` row still there when its wait is over is counted as `followup.no_answer`
  and dropped.

Messages are channel-neutral here (`Notice`, or the engine's `Turn` for a check-in);
the channel's `Render` turns them into its outbox payloads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bot.engine.engine import Engine
from bot.engine.events import Command, CommandName
from bot.engine.session import Session
from bot.engine.turn import Days, Money, Msg, Turn, When
from bot.reminders.rows import CheckinRow, Kind, MonthlyRow
from bot.reminders.schedule import Moment, checkin_at, instant, late_decision, next_occurrence, zone
from bot.store.base import Firing, Reminder

log = logging.getLogger(__name__)

#: Anonymous event names for the check-in's outcomes (`stats` shows their shares).
FOLLOWUP_EVENT = "followup.{outcome}"
NO_ANSWER_EVENT = "followup.no_answer"


@dataclass(frozen=True)
class PaidButton:
    """The "paid, thanks" button of a reminder: which row, and which month's repayment."""

    reminder_id: int
    due: date
    label: Msg


@dataclass(frozen=True)
class Notice:
    """A reminder message, channel-neutral: its text, its language and its button."""

    text: Msg
    locale: str
    paid: PaidButton


# A notice or a check-in's turn as the channel's outbox payloads for `chat_key`; [] for
# a chat the channel cannot reach (the terminal's).
Render = Callable[[str, Notice | Turn], list[dict[str, Any]]]


@dataclass(frozen=True)
class FiringPolicy:
    """How late a reminder is still worth sending (REMINDER_LATE_MINUTES). How long a
    check-in waits for its answer is the dialogs' (`reminders: checkin_answer_days`)."""

    late_window: timedelta = timedelta(hours=6)


# The engine in use now: a reload of the dialogs (SIGHUP, /reload) replaces the advisor's.
Engines = Callable[[], Engine]


class Firer:
    """Fires rows at one instant: `firer.at(now)` is the `fire` a store's claim calls."""

    def __init__(self, engines: Engines, render: Render, policy: FiringPolicy) -> None:
        self.engines = engines
        self.render = render
        self.policy = policy

    @property
    def engine(self) -> Engine:
        """The dialogs' engine as it is now."""
        return self.engines()

    def at(self, now: datetime) -> Callable[[Reminder, Session | None], Firing]:
        """The `fire` for a claim made at `now` (with the engine of that moment throughout)."""
        engine = self.engine
        return lambda row, session: self.fire(row, session, now, engine)

    def fire(self, row: Reminder, session: Session | None, now: datetime, engine: Engine | None = None) -> Firing:
        """What `row`, due at or before `now`, becomes; an unreadable row is dropped (and
        logged without its content), so one bad row never blocks the others."""
        engine = engine or self.engine
        try:
            if row.kind == Kind.MONTHLY:
                return self._monthly(row, session, now, engine)
            if row.kind == Kind.CHECKIN:
                return self._checkin(row, session, now, engine)
            if row.kind == Kind.ASKED:
                return Firing(events=(NO_ANSWER_EVENT,))
            raise ValueError(f"unknown kind of reminder {row.kind!r}")
        except ValueError as error:
            log.warning("reminder %s dropped: %s", row.id, error)
            return Firing()

    # -- monthly ---------------------------------------------------------------------

    def _monthly(self, row: Reminder, session: Session | None, now: datetime, engine: Engine) -> Firing:
        reminder = MonthlyRow.from_payload(row.payload, row.due_at)
        occurrence = reminder.next
        paid = reminder.paid is not None and occurrence.due <= reminder.paid
        outbox: list[dict[str, Any]] = []
        if late_decision(row.due_at, now, self.policy.late_window) and not paid:
            # The conversation's language if there is one: the person may have switched.
            locale = session.locale if session is not None else reminder.locale
            outbox = self.render(row.chat_key, notice(engine, row.id, reminder, locale, now))
        following = next_occurrence(reminder.schedule, now, reminder.paid)
        return Firing(
            outbox=tuple(outbox),
            kind=Kind.MONTHLY,
            due_at=following.at,
            payload=reminder.moved_to(following).to_payload(),
        )

    # -- check-ins -------------------------------------------------------------------

    def _checkin(self, row: Reminder, session: Session | None, now: datetime, engine: Engine) -> Firing:
        checkin = CheckinRow.from_payload(row.payload)
        if session is None or not engine.is_valid(session) or engine.spec.reminders.checkin_state is None:
            return Firing()  # no conversation to come back to (erased, expired, or no check-in state)
        if not late_decision(row.due_at, now, self.policy.late_window):
            # Missed during an outage: at its time of day, the next time that comes.
            again = checkin_at(now, 0, checkin.at, checkin.zone_name)
            if again <= now:
                again = checkin_at(now, 1, checkin.at, checkin.zone_name)
            return Firing(kind=Kind.CHECKIN, due_at=again, payload=row.payload)
        turn = engine.handle(session, Command(CommandName.CHECKIN))
        return Firing(
            outbox=tuple(self.render(row.chat_key, turn)),
            kind=Kind.ASKED,
            due_at=now + timedelta(days=engine.spec.reminders.checkin_answer_days),
            payload=row.payload,
            session=turn.session,
        )


def notice(engine: Engine, reminder_id: int, reminder: MonthlyRow, locale: str, now: datetime) -> Notice:
    """The message of `reminder`'s next occurrence, as sent at `now`."""
    occurrence, schedule = reminder.next, reminder.schedule
    due = When(instant(occurrence.due, schedule.at, schedule.zone_name), schedule.zone_name, clock=False)
    values: dict[str, Any] = {"due": due}
    if reminder.amount is not None:
        values["amount"] = Money(reminder.amount)
    if occurrence.moment is Moment.BEFORE:
        # Counted from the day it is sent on: a late reminder says how long is really left.
        left = (occurrence.due - now.astimezone(zone(schedule.zone_name)).date()).days
        values["days"] = Days(max(left, 0))
        key = "reminder_before_amount" if reminder.amount is not None else "reminder_before"
    else:
        key = "reminder_due_amount" if reminder.amount is not None else "reminder_due"
    button = PaidButton(reminder_id, occurrence.due, engine.message("reminder_paid_button"))
    return Notice(engine.message(key, **values), locale, button)
