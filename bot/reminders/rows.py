"""What a reminder row's `payload` holds, typed: the schedule the person chose and the
occurrence that comes next (monthly), or when and in which zone a check-in comes.

The store keeps rows as `kind`, `due_at` and a JSON `payload`; only this module reads
or writes that JSON, so the format has one home. `from_payload` raises `ValueError`
for a payload it cannot read (written by hand, or by a newer version).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, time
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from bot.reminders.schedule import Moment, Monthly, Occurrence, ScheduleError, parse_time_of_day


class Kind(StrEnum):
    """What a row is (the store's `kind` column)."""

    MONTHLY = "monthly"  # a monthly repayment reminder
    CHECKIN = "checkin"  # a check-in promised after the plan, not asked yet
    ASKED = "asked"  # a check-in asked, waiting for the answer (due: when it counts as unanswered)


@dataclass(frozen=True)
class MonthlyRow:
    """A monthly reminder: its schedule, its language, the amount to repay (if agreed),
    which occurrence is next (`moment` on the repayment due on `due`), and the due date
    of the last month the person said was paid."""

    schedule: Monthly
    locale: str
    next: Occurrence
    amount: Decimal | None = None
    paid: date | None = None

    def to_payload(self) -> dict[str, Any]:
        """The JSON the store keeps."""
        schedule = self.schedule
        return {
            "day": schedule.day,
            "days_before": schedule.days_before,
            "time": schedule.at.strftime("%H:%M"),
            "zone": schedule.zone_name,
            "on_due_day": schedule.on_due_day,
            "locale": self.locale,
            "amount": None if self.amount is None else str(self.amount),
            "moment": self.next.moment.value,
            "due": self.next.due.isoformat(),
            "paid": None if self.paid is None else self.paid.isoformat(),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], due_at: Any) -> MonthlyRow:
        """Read a row's payload (`due_at` is the row's column: the next occurrence's instant)."""
        try:
            schedule = Monthly(
                day=int(payload["day"]),
                days_before=int(payload["days_before"]),
                at=parse_time_of_day(payload["time"]),
                zone_name=str(payload["zone"]),
                on_due_day=bool(payload.get("on_due_day", False)),
            )
            amount = payload.get("amount")
            paid = payload.get("paid")
            occurrence = Occurrence(due_at, date.fromisoformat(str(payload["due"])), Moment(payload["moment"]))
            return cls(
                schedule=schedule,
                locale=str(payload["locale"]),
                next=occurrence,
                amount=None if amount is None else Decimal(str(amount)),
                paid=None if paid is None else date.fromisoformat(str(paid)),
            )
        except (KeyError, TypeError, ValueError, InvalidOperation, ScheduleError) as error:
            raise ValueError(f"unreadable monthly reminder ({type(error).__name__})") from None

    def moved_to(self, occurrence: Occurrence) -> MonthlyRow:
        """The same reminder, next due at `occurrence`."""
        return replace(self, next=occurrence)

    def paid_for(self, due: date) -> MonthlyRow:
        """The same reminder with the repayment due on `due` (and every earlier one) paid."""
        return replace(self, paid=max(due, self.paid) if self.paid is not None else due)


@dataclass(frozen=True)
class CheckinRow:
    """A check-in: the person's zone and language, and the local time of day it comes at
    (a check-in missed during an outage comes the next day at that time)."""

    zone_name: str
    at: time
    locale: str

    def to_payload(self) -> dict[str, Any]:
        """The JSON the store keeps."""
        return {"zone": self.zone_name, "time": self.at.strftime("%H:%M"), "locale": self.locale}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CheckinRow:
        """Read a check-in row's payload."""
        try:
            return cls(str(payload["zone"]), parse_time_of_day(payload["time"]), str(payload["locale"]))
        except (KeyError, TypeError, ValueError, ScheduleError) as error:
            raise ValueError(f"unreadable check-in ({type(error).__name__})") from None
