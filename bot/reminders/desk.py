"""What a person does with their reminders outside the dialog: list them (`/reminders`),
cancel one, or press "paid, thanks" under a reminder.

Channel-neutral: each operation says what to reply as a `Msg`, and the channel's
`render` turns it into outbox payloads committed in the same conversation block as
the change, with the update id, so a press Telegram delivers twice changes and
answers once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.engine.engine import Engine
from bot.engine.session import Session
from bot.engine.turn import Days, Msg, When
from bot.reminders.clock import Clock, system_clock
from bot.reminders.firing import Engines
from bot.reminders.rows import CheckinRow, Kind, MonthlyRow
from bot.reminders.schedule import Moment, next_occurrence
from bot.store.base import DropReminder, MoveReminder, Reminder, Store

log = logging.getLogger(__name__)

# The reply to an operation as the channel's outbox payloads, given the chat's
# conversation (its language; None: there is none).
Render = Callable[[Msg, Session | None], list[dict[str, Any]]]


@dataclass(frozen=True)
class Listed:
    """One line of `/reminders`: its number on the list, the row, and what it says."""

    number: int
    reminder: Reminder
    line: Msg


class ReminderDesk:
    """Lists, cancels and marks paid the reminders of one chat."""

    def __init__(self, store: Store, engines: Engines, clock: Clock = system_clock) -> None:
        self.store = store
        self.engines = engines
        self.clock = clock

    @property
    def engine(self) -> Engine:
        """The dialogs' engine as it is now (a reload replaces it)."""
        return self.engines()

    async def listing(self, chat_key: str) -> list[Listed]:
        """The chat's reminders and promised check-ins, soonest first (a check-in already
        asked is waiting for its answer, not something to cancel)."""
        rows = [r for r in await self.store.reminders(chat_key) if r.kind in (Kind.MONTHLY, Kind.CHECKIN)]
        listed = []
        for number, row in enumerate(rows, start=1):
            line = self._line(number, row)
            if line is not None:
                listed.append(Listed(number, row, line))
        return listed

    async def cancel(self, chat_key: str, reminder_id: int, number: int, render: Render, update_id: int) -> bool:
        """Cancel one reminder and reply; False when the update was seen before."""
        async with self.store.conversation(chat_key, update_id) as conv:
            if conv.duplicate:
                return False
            exists = any(r.id == reminder_id for r in await self.store.reminders(chat_key))
            if exists:
                conv.remind(DropReminder(reminder_id))
                reply = self.engine.message("reminders_cancelled", number=number)
            else:
                reply = self.engine.message("reminders_gone")
            for payload in render(reply, conv.session):
                conv.send(payload)
        return True

    async def paid(self, chat_key: str, reminder_id: int, due: date, render: Render, update_id: int) -> bool:
        """The reminder's "Paid, thanks" for the repayment due on `due`: the rest of
        that month's reminders stay away. False when the update was seen before."""
        async with self.store.conversation(chat_key, update_id) as conv:
            if conv.duplicate:
                return False
            row = next((r for r in await self.store.reminders(chat_key) if r.id == reminder_id), None)
            reply = self.engine.message("reminder_paid_noted")
            if row is not None and row.kind == Kind.MONTHLY:
                change, skipped = self.mark_paid(row, due)
                if change is not None:
                    conv.remind(change)
                if skipped:
                    reply = self.engine.message("reminder_paid_done")
            for payload in render(reply, conv.session):
                conv.send(payload)
        return True

    async def switch_off(self, chat_key: str) -> None:
        """The user blocked the bot (the sender's 403 hook): nothing will reach them, so
        their reminders and check-ins stop. A person who comes back sets them up again."""
        dropped = await self.store.drop_reminders(chat_key)
        if dropped:
            log.info("a blocked chat's %d reminder(s) were switched off", dropped)

    def mark_paid(self, row: Reminder, due: date) -> tuple[MoveReminder | None, bool]:
        """The change "paid" makes to `row`, and whether a reminder of that month was still to come."""
        try:
            reminder = MonthlyRow.from_payload(row.payload, row.due_at)
        except ValueError:
            return None, False  # the reminder loop drops it when it comes
        marked = reminder.paid_for(due)
        assert marked.paid is not None
        if reminder.next.due > marked.paid:
            # An older month's button: remember it, nothing to skip.
            return MoveReminder(row.id, row.due_at, row.due_at, marked.to_payload()), False
        following = next_occurrence(reminder.schedule, self.clock(), marked.paid)
        return MoveReminder(row.id, row.due_at, following.at, marked.moved_to(following).to_payload()), True

    def _line(self, number: int, row: Reminder) -> Msg | None:
        try:
            if row.kind == Kind.CHECKIN:
                checkin = CheckinRow.from_payload(row.payload)
                return self.engine.message("reminders_checkin", number=number, next=When(row.due_at, checkin.zone_name))
            reminder = MonthlyRow.from_payload(row.payload, row.due_at)
        except ValueError:
            return None
        schedule = reminder.schedule
        values: dict[str, Any] = {
            "number": number,
            "day": schedule.day,
            "before": Days(schedule.days_before),
            "time": schedule.at.strftime("%H:%M"),
            "zone": schedule.zone_name,
            "next": When(row.due_at, schedule.zone_name),
        }
        if schedule.moments() == (Moment.DUE,):
            return self.engine.message("reminders_on_the_day", **values)
        key = "reminders_monthly_due_day" if schedule.on_due_day else "reminders_monthly"
        return self.engine.message(key, **values)
