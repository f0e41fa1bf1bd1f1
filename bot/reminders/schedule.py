"""When a reminder goes out: monthly repayment reminders and one-off check-ins, as pure maths.

A monthly reminder is about a repayment due on day `day` of every month (1–31). A
month shorter than that day has its due date on its last day (the 31st is 30 April,
28 or 29 February). The reminder comes `days_before` days earlier at `at` o'clock in the
person's time zone, and, if asked for, once more on the due date itself. Each of those
instants is an `Occurrence`; `next_occurrence` finds the first one after a given
instant. Nothing here reads a clock: every function is given the time it needs.

Local times become instants through `zoneinfo`. A local time that does not exist (a
daylight-saving gap, 02:30 on the night clocks spring forward) is taken with the
offset before the gap, so it lands an hour later in wall-clock terms; one that exists
twice (clocks falling back) is the first of the two. Asia/Shanghai has neither.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "Moment",
    "Monthly",
    "Occurrence",
    "ScheduleError",
    "checkin_at",
    "due_date",
    "instant",
    "late_decision",
    "next_occurrence",
    "parse_time_of_day",
    "zone",
]

# Months looked at before giving up; two are always enough (a reminder is at most a
# month before its due date), the rest is margin.
_MONTHS_AHEAD = 4
# How far before its due date a reminder may come: beyond a month it would fall before
# the previous month's due date, which nobody means.
MAX_DAYS_BEFORE = 27


class ScheduleError(ValueError):
    """A schedule that cannot be kept: a day outside 1–31, an unknown time zone, …"""


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. Asia/Shanghai); `ScheduleError` when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}") from exc


def parse_time_of_day(value: object) -> time:
    """`9`, `"9"`, `"09:00"` or `"21:30"` as a time of day; `ScheduleError` otherwise."""
    if isinstance(value, bool):
        raise ScheduleError(f"not a time of day: {value!r}")
    if isinstance(value, int):
        hour, minute = value, 0
    elif isinstance(value, str):
        hours, _, minutes = value.strip().partition(":")
        if not hours.isdigit() or (minutes and not minutes.isdigit()):
            raise ScheduleError(f"not a time of day: {value!r}")
        hour, minute = int(hours), int(minutes or 0)
    else:
        raise ScheduleError(f"not a time of day: {value!r}")
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ScheduleError(f"not a time of day: {value!r}")
    return time(hour, minute)


class Moment(StrEnum):
    """Which of a month's reminders an occurrence is."""

    BEFORE = "before"  # `days_before` days ahead of the due date
    DUE = "due"  # on the due date itself


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One reminder to send: at instant `at` (UTC), about the repayment due on `due`."""

    at: datetime
    due: date
    moment: Moment


@dataclass(frozen=True, slots=True)
class Monthly:
    """A monthly repayment reminder, as the person set it.

    `day` is the due day of the month (1–31, clipped to short months); `days_before`
    how many days earlier the reminder comes (0: on the due date); `at` the local time
    of day; `zone_name` an IANA time zone; `on_due_day` asks for a second reminder on
    the due date itself (pointless when `days_before` is 0, so then there is one).
    """

    day: int
    days_before: int
    at: time
    zone_name: str
    on_due_day: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.day <= 31:
            raise ScheduleError(f"a due day is 1–31, not {self.day}")
        if not 0 <= self.days_before <= MAX_DAYS_BEFORE:
            raise ScheduleError(f"days before is 0–{MAX_DAYS_BEFORE}, not {self.days_before}")
        zone(self.zone_name)  # refuse an unknown zone now, not on the first send

    def moments(self) -> tuple[Moment, ...]:
        """The reminders each month brings, in the order they come."""
        if self.days_before == 0:
            return (Moment.DUE,)
        return (Moment.BEFORE, Moment.DUE) if self.on_due_day else (Moment.BEFORE,)

    def occurrences_in(self, year: int, month: int) -> list[Occurrence]:
        """The reminders about the repayment due in (`year`, `month`), in order."""
        due = due_date(year, month, self.day)
        found = []
        for moment in self.moments():
            local_day = due - timedelta(days=self.days_before) if moment is Moment.BEFORE else due
            found.append(Occurrence(instant(local_day, self.at, self.zone_name), due, moment))
        return found


def due_date(year: int, month: int, day: int) -> date:
    """Day `day` of the month, or the month's last day when it is shorter (31 → 30 April)."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def instant(local_day: date, at: time, zone_name: str) -> datetime:
    """A wall-clock time in a zone, as a UTC instant (gaps and folds as the module says)."""
    return datetime.combine(local_day, at, tzinfo=zone(zone_name)).astimezone(UTC)


def _add_months(year: int, month: int, count: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + count
    return index // 12, index % 12 + 1


def next_occurrence(schedule: Monthly, after: datetime, paid: date | None = None) -> Occurrence:
    """The first reminder strictly after `after` (an aware datetime).

    `paid` is the due date of a month the person said they have paid ("paid, thanks"):
    that month's due-day reminder, and any other of its reminders still to come, is
    skipped.
    """
    if after.tzinfo is None:
        raise ScheduleError("`after` must be timezone-aware")
    local = after.astimezone(zone(schedule.zone_name))
    # A month's "before" reminder can fall in the previous month (due on the 2nd, three
    # days before: the 30th), so start one month back.
    year, month = _add_months(local.year, local.month, -1)
    for offset in range(_MONTHS_AHEAD):
        for occurrence in schedule.occurrences_in(*_add_months(year, month, offset)):
            if occurrence.at > after and (paid is None or occurrence.due > paid):
                return occurrence
    raise ScheduleError("no reminder within the next months")  # pragma: no cover - cannot happen


def checkin_at(now: datetime, days: int, at: time, zone_name: str) -> datetime:
    """When a check-in promised at `now` "in `days` days" comes: that day, at `at`
    local time, so it never wakes anyone at the hour they happened to read the plan."""
    local_day = now.astimezone(zone(zone_name)).date() + timedelta(days=days)
    return instant(local_day, at, zone_name)


def late_decision(due_at: datetime, now: datetime, window: timedelta) -> bool:
    """Send a reminder that was due at `due_at`, now? Yes when it is due and late by at
    most `window` (sent late, once); an older one is skipped for its next occurrence,
    so a long outage never ends in a burst of stale reminders."""
    return due_at <= now and now - due_at <= window
