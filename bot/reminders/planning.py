"""The advisor's side of a turn's actions (`do:` in the dialogs): what they change in the
store, and the line that says when the first reminder or the check-in comes.

`Planner.plan(turn, now)` is pure: the advisor calls it with its clock's time inside
the conversation block and queues the changes there (`Conversation.remind`), so a
reminder is planned in the same transaction as the answer that asked for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.engine.engine import Engine
from bot.engine.session import Session
from bot.engine.turn import Action, Block, Msg, Say, Turn, When
from bot.reminders.firing import FOLLOWUP_EVENT
from bot.reminders.rows import CheckinRow, Kind, MonthlyRow
from bot.reminders.schedule import Monthly, ScheduleError, checkin_at, next_occurrence, parse_time_of_day
from bot.spec.actions import ActionName
from bot.store.base import CloseReminders, PlanReminder, ReminderChange

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Planned:
    """What a turn's actions come to: the changes to commit, and the lines to add."""

    changes: tuple[ReminderChange, ...] = ()
    # (position among the turn's blocks, the line): where each confirmation goes.
    lines: tuple[tuple[int, Msg], ...] = ()


class Planner:
    """Carries out `set_reminder`, `schedule_checkin` and `answer_checkin` for one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.settings = engine.spec.reminders

    def plan(self, turn: Turn, now: datetime) -> tuple[Turn, tuple[ReminderChange, ...]]:
        """`turn` with its confirmations in place, and the store changes its actions ask for."""
        if not turn.actions:
            return turn, ()
        changes: list[ReminderChange] = []
        lines: list[tuple[int, Msg]] = []
        for action in turn.actions:
            planned = self._carry_out(action, turn.session, now)
            changes.extend(planned.changes)
            lines.extend(planned.lines)
        if not lines:
            return turn, tuple(changes)
        blocks: list[Block] = list(turn.blocks)
        for at, line in sorted(lines, key=lambda item: item[0], reverse=True):
            blocks.insert(at, Say(line))
        return replace(turn, blocks=tuple(blocks)), tuple(changes)

    def zone_of(self, session: Session) -> str:
        """The person's time zone: their answer, else the dialogs' default."""
        chosen = session.slots.get(self.settings.zone_slot)
        return chosen if isinstance(chosen, str) and chosen else self.settings.time_zone

    def _carry_out(self, action: Action, session: Session, now: datetime) -> Planned:
        if action.name is ActionName.SET_REMINDER:
            return self._set_reminder(action, session, now)
        if action.name is ActionName.SCHEDULE_CHECKIN:
            return self._schedule_checkin(action, session, now)
        outcome = action.values.get("outcome")
        if not isinstance(outcome, str):
            return Planned()
        return Planned((CloseReminders(Kind.ASKED, FOLLOWUP_EVENT.format(outcome=outcome)),))

    def _set_reminder(self, action: Action, session: Session, now: datetime) -> Planned:
        values = action.values
        settings = self.settings
        try:
            schedule = Monthly(
                day=_whole(values.get("day")),
                days_before=_whole(values.get("days_before", settings.days_before), settings.days_before),
                at=parse_time_of_day(values.get("time") or settings.time),
                zone_name=self.zone_of(session),
                on_due_day=values.get("on_due_day") is True,
            )
        except (ScheduleError, ValueError) as error:
            # Only when the dialogs let an unanswered or odd slot through: no reminder
            # then, rather than a wrong one (validation checks the slot types).
            log.warning("no reminder set: %s", type(error).__name__)
            return Planned()
        amount = values.get("amount")
        first = next_occurrence(schedule, now)
        reminder = MonthlyRow(
            schedule=schedule,
            locale=session.locale,
            next=first,
            amount=Decimal(str(amount)) if isinstance(amount, int | float) and not isinstance(amount, bool) else None,
        )
        line = self.engine.message("reminder_first", when=When(first.at, schedule.zone_name), zone=schedule.zone_name)
        return Planned((PlanReminder(Kind.MONTHLY, first.at, reminder.to_payload()),), ((action.at, line),))

    def _schedule_checkin(self, action: Action, session: Session, now: datetime) -> Planned:
        settings = self.settings
        zone_name = self.zone_of(session)
        at = parse_time_of_day(settings.time)
        due = checkin_at(now, settings.checkin_days, at, zone_name)
        checkin = CheckinRow(zone_name, at, session.locale)
        line = self.engine.message("checkin_first", when=When(due, zone_name), zone=zone_name)
        # One check-in at a time: a new promise replaces one still to come.
        return Planned((PlanReminder(Kind.CHECKIN, due, checkin.to_payload(), replaces=True),), ((action.at, line),))


def _whole(value: Any, default: int | None = None) -> int:
    """A slot value that is a whole number (a choice's value may be 3 or "3")."""
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or value is None:
        raise ValueError("not a number")
    return int(value)
