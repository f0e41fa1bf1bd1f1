"""What a due row becomes (pure): the message, the next occurrence, the late-delivery
window, "paid, thanks", and a check-in moving the conversation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot.engine.engine import Engine
from bot.engine.session import Session
from bot.engine.turn import Turn
from bot.i18n.catalog import Localizer
from bot.reminders.firing import Firer, FiringPolicy, Notice
from bot.reminders.rows import CheckinRow, Kind, MonthlyRow
from bot.reminders.schedule import Moment, Monthly, next_occurrence
from bot.store.base import Reminder

WINDOW = timedelta(hours=6)


class Rendered:
    """A stand-in for the channel: keeps what it was asked to render, as text."""

    def __init__(self, localizer: Localizer) -> None:
        self.localizer = localizer
        self.items: list[tuple[str, Notice | Turn]] = []

    def __call__(self, chat_key: str, item: Notice | Turn) -> list[dict[str, Any]]:
        self.items.append((chat_key, item))
        if isinstance(item, Notice):
            text = self.localizer.text(item.text, item.locale)
            return [{"text": text, "button": self.localizer.text(item.paid.label, item.locale)}]
        return [{"turn": item.session.state}]


@pytest.fixture
def rendered(localizer: Localizer) -> Rendered:
    return Rendered(localizer)


@pytest.fixture
def firer(engine: Engine, rendered: Rendered) -> Firer:
    return Firer(lambda: engine, rendered, FiringPolicy(late_window=WINDOW))


def monthly_row(
    day: int = 15,
    after: datetime = datetime(2025, 3, 1, tzinfo=UTC),
    on_due_day: bool = False,
    amount: Decimal | None = None,
    paid: date | None = None,
    locale: str = "en",
) -> Reminder:
    schedule = Monthly(day, 3, time(9), "Asia/Shanghai", on_due_day)
    first = next_occurrence(schedule, after)
    payload = MonthlyRow(schedule, locale, first, amount, paid).to_payload()
    return Reminder(id=7, chat_key="tg:1", due_at=first.at, payload=payload, kind=Kind.MONTHLY)


def test_due_now_sends_and_moves_to_the_next(firer: Firer, rendered: Rendered) -> None:
    row = monthly_row()
    assert row.due_at == datetime(2025, 3, 12, 1, tzinfo=UTC)  # 09:00 in Shanghai, 3 days before the 15th
    firing = firer.fire(row, None, row.due_at + timedelta(seconds=2))
    assert firing.outbox == (
        {
            "text": "Reminder: your repayment is due on Sat, Mar 15, 2025, in 3 days. Pay it on time, at least "
            "the minimum payment, so it does not become overdue.",
            "button": "Paid, thanks",
        },
    )
    [(chat, notice)] = rendered.items
    assert chat == "tg:1" and isinstance(notice, Notice)
    assert (notice.paid.reminder_id, notice.paid.due) == (7, date(2025, 3, 15))
    assert firing.kind == Kind.MONTHLY and firing.due_at == datetime(2025, 4, 12, 1, tzinfo=UTC)
    assert firing.payload is not None and firing.payload["due"] == "2025-04-15"


def test_the_due_day_reminder_with_the_agreed_amount_in_the_persons_language(firer: Firer) -> None:
    row = monthly_row(on_due_day=True, amount=Decimal(1200), after=datetime(2025, 3, 13, tzinfo=UTC))
    assert row.payload["moment"] == Moment.DUE
    session = Session("cardholder", "after_plan", "zh_CN")  # switched to Chinese since
    firing = firer.fire(row, session, row.due_at)
    assert firing.outbox[0]["text"] == "今天是您的还款日（2025年3月15日周六）：¥1,200.00。如果还没还，请今天还款。"
    assert firing.outbox[0]["button"] == "已还款，谢谢"


def test_late_within_the_window_is_sent_once_and_says_how_long_is_left(firer: Firer) -> None:
    row = monthly_row()
    late = firer.fire(row, None, row.due_at + timedelta(hours=5, minutes=59))
    assert len(late.outbox) == 1 and "in 3 days" in late.outbox[0]["text"]
    # A day late (a long window): "in 2 days".
    long_window = Firer(firer.engines, firer.render, FiringPolicy(late_window=timedelta(days=2)))
    assert "in 2 days" in long_window.fire(row, None, row.due_at + timedelta(days=1)).outbox[0]["text"]


def test_older_than_the_window_moves_on_without_a_burst(firer: Firer) -> None:
    row = monthly_row(on_due_day=True)
    # Down for four days: the "before" (12th) and the due-day (15th) reminders both passed.
    firing = firer.fire(row, None, row.due_at + timedelta(days=4))
    assert firing.outbox == ()
    assert firing.due_at == datetime(2025, 4, 12, 1, tzinfo=UTC)  # next month's, not the 15th's
    # Just past the window: not sent, and the next is the due-day one still ahead.
    skipped = firer.fire(row, None, row.due_at + WINDOW + timedelta(seconds=1))
    assert skipped.outbox == () and skipped.due_at == datetime(2025, 3, 15, 1, tzinfo=UTC)


def test_a_paid_month_sends_nothing_more(firer: Firer) -> None:
    row = monthly_row(on_due_day=True, paid=date(2025, 3, 15), after=datetime(2025, 3, 13, tzinfo=UTC))
    firing = firer.fire(row, None, row.due_at)
    assert firing.outbox == () and firing.due_at == datetime(2025, 4, 12, 1, tzinfo=UTC)


def test_a_checkin_moves_the_conversation_and_waits_for_the_answer(firer: Firer, rendered: Rendered) -> None:
    due = datetime(2025, 3, 13, 1, tzinfo=UTC)
    row = Reminder(3, "tg:1", due, CheckinRow("Asia/Shanghai", time(9), "en").to_payload(), Kind.CHECKIN)
    session = Session("cardholder", "after_plan", "en", {"product": "credit_card"}, version=9)
    firing = firer.fire(row, session, due)
    assert firing.session is not None and firing.session.state == "followup"
    assert firing.session.version == 10  # the old question's buttons are stale now
    assert firing.outbox == ({"turn": "followup"},)
    assert (firing.kind, firing.due_at) == (Kind.ASKED, due + timedelta(days=7))
    # Missed by more than the window: the next day at its hour, nothing sent.
    late = firer.fire(row, session, due + timedelta(hours=7))
    assert (late.kind, late.due_at, late.outbox, late.session) == (Kind.CHECKIN, due + timedelta(days=1), (), None)
    # No conversation left (erased or expired): nobody to ask.
    assert firer.fire(row, None, due).kind is None


def test_an_unanswered_checkin_counts_as_no_answer(firer: Firer) -> None:
    row = Reminder(4, "tg:1", datetime(2025, 3, 20, tzinfo=UTC), {}, Kind.ASKED)
    firing = firer.fire(row, None, row.due_at)
    assert (firing.kind, firing.events, firing.outbox) == (None, ("followup.no_answer",), ())


@pytest.mark.parametrize(
    ("kind", "payload"), [(Kind.MONTHLY, {"day": "x"}), (Kind.CHECKIN, {}), ("weekly", {}), (Kind.MONTHLY, {})]
)
def test_an_unreadable_row_is_dropped(firer: Firer, kind: str, payload: dict[str, Any]) -> None:
    row = Reminder(5, "tg:1", datetime(2025, 3, 20, tzinfo=UTC), payload, kind)
    assert firer.fire(row, None, row.due_at).kind is None
