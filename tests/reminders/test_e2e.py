"""Reminders through the real webhook process and the stand-in Bot API.

The process's reminder clock is driven through CLOCK_OFFSET_FILE (the system clock plus
the seconds in that file): the test sets a reminder in the conversation, then moves
the process's time to just before it, and the reminder must arrive within its minute.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.reminders.schedule import Monthly, Occurrence, checkin_at, next_occurrence
from tests.support.tg_harness import (
    TOKEN,
    StandIn,
    TgUser,
    Webhook,
    free_port,
    start_webhook,
    stop_webhook,
    webhook_env,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
REMINDER = "Reminder: your repayment is due on"


@dataclass
class Process:
    standin: StandIn
    hook: Webhook
    offset_file: Path

    def shift_to(self, instant: datetime) -> timedelta:
        """Move the process's clock so that it reads `instant` now; the shift."""
        offset = instant - datetime.now(UTC)
        self.offset_file.write_text(f"{offset.total_seconds():.3f}", encoding="utf-8")
        return offset

    def reminders(self, chat_id: int) -> int:
        with sqlite3.connect(self.hook.database) as conn:
            count = conn.execute("SELECT count(*) FROM reminders WHERE chat_key = ?", (f"tg:{chat_id}",)).fetchone()[0]
        conn.close()
        return int(count)


@pytest.fixture(scope="module")
def process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    tmp = tmp_path_factory.mktemp("reminders-e2e")
    offset_file = tmp / "clock-offset"
    offset_file.write_text("0", encoding="utf-8")
    standin = StandIn(TOKEN).start()
    hook = start_webhook(webhook_env(standin.url, tmp, free_port(), CLOCK_OFFSET_FILE=str(offset_file)), tmp)
    try:
        yield Process(standin, hook, offset_file)
    finally:
        stop_webhook(hook)
        standin.stop()


def texts(user: TgUser) -> list[str]:
    return [message.text for message in user.messages()]


def wait_for_text(process: Process, user: TgUser, part: str, timeout: float = 15) -> str:
    assert process.standin.wait_for(lambda: any(part in text for text in texts(user)), timeout), texts(user)[-3:]
    return next(text for text in reversed(texts(user)) if part in text)


def set_reminder(process: Process, user: TgUser) -> Occurrence:
    """/remind through the buttons, due four days from now (so the reminder, three days
    before, comes within a day); the occurrence the process must have planned."""
    user.send("/remind")
    wait_for_text(process, user, "Your time zone: China (Asia/Shanghai). Is that right?")
    user.press("Yes, that's right")
    wait_for_text(process, user, "On which day of the month is your repayment due?")
    day = (datetime.now(UTC).astimezone(SHANGHAI) + timedelta(days=4)).day
    user.send(f"{day}号")
    wait_for_text(process, user, "How many days before the due day")
    user.press("3 days before")
    wait_for_text(process, user, "At what time of day?")
    user.press("09:00")
    wait_for_text(process, user, "Shall I also remind you on the due day itself?")
    user.press("No, once is enough")
    first = next_occurrence(Monthly(day, 3, time(9), "Asia/Shanghai"), datetime.now(UTC))
    wait_for_text(process, user, "The first reminder comes on")
    return first


def test_a_reminder_set_in_the_conversation_arrives_at_its_minute(process: Process) -> None:
    user = TgUser(process.hook, process.standin, "en")
    first = set_reminder(process, user)
    local = first.at.astimezone(SHANGHAI)
    confirmation = wait_for_text(process, user, "The first reminder comes on")
    assert f"{local:%b} {local.day}, {local.year}, 09:00 (Asia/Shanghai)" in confirmation
    # Nothing yet: the process's time is still today.
    assert not any(REMINDER in text for text in texts(user))
    offset = process.shift_to(first.at - timedelta(seconds=3))
    try:
        reminder = wait_for_text(process, user, REMINDER)
        arrived = datetime.now(UTC) + offset  # the process's time when it was there
        assert first.at <= arrived < first.at + timedelta(minutes=1), (arrived, first.at)
        assert "in 3 days" in reminder
        [message] = [m for m in user.messages() if REMINDER in m.text]
        assert [label for label, _ in message.buttons] == ["Paid, thanks"]
        # "Paid, thanks": no due-day reminder was asked for, so just a thank-you.
        user.press("Paid, thanks")
        wait_for_text(process, user, "Well done, thank you for letting me know.")
        # Sent once: the next is next month's.
        assert sum(REMINDER in text for text in texts(user)) == 1
        # /reminders lists it, with a button to cancel it.
        user.send("/reminders")
        listing = wait_for_text(process, user, "Your reminders:")
        assert "1. Repayment due on day" in listing
        user.press("Cancel 1")
        wait_for_text(process, user, "Cancelled: 1.")
        assert process.reminders(user.chat_id) == 0
    finally:
        process.shift_to(datetime.now(UTC))


def test_a_user_who_blocked_the_bot_has_reminders_switched_off(process: Process) -> None:
    user = TgUser(process.hook, process.standin, "en")
    first = set_reminder(process, user)
    assert process.reminders(user.chat_id) == 1
    process.standin.fail_call("sendMessage", code=403, chat_id=user.chat_id)  # blocked
    process.shift_to(first.at + timedelta(seconds=1))
    try:
        assert process.standin.wait_for(lambda: process.reminders(user.chat_id) == 0, timeout=15)
        assert not any(REMINDER in text for text in texts(user))
    finally:
        process.shift_to(datetime.now(UTC))


def test_the_checkin_comes_after_the_plan_and_an_agreed_plan_becomes_a_reminder(process: Process) -> None:
    user = TgUser(process.hook, process.standin, "en")
    user.send("/start")
    user.press("I have an overdue repayment")
    user.press("Credit card")
    for typed in ("45", "15000", "skip", "no", "yes", "no", "none", "yes"):
        user.send(typed)
    wait_for_text(process, user, "Shall we go through the plan, one step at a time?")
    for _ in range(6):
        if "Yes, please" in user.buttons():
            break
        user.press("Next step")
    assert "Shall I check in with you in 3 days to ask how it went?" in user.last().text
    promised = datetime.now(UTC)
    user.press("Yes, please")
    when = checkin_at(promised, 3, time(9), "Asia/Shanghai")
    local = when.astimezone(SHANGHAI)
    wait_for_text(process, user, f"I will check in on {local:%a}, {local:%b} {local.day}, {local.year}, 09:00")
    offset = process.shift_to(when - timedelta(seconds=2))
    try:
        question = wait_for_text(process, user, "Did you reach your bank?")
        assert datetime.now(UTC) + offset >= when
        assert question  # the check-in's question, with the dialog's own buttons
        assert user.buttons() == ["We agreed a plan", "They refused", "Not yet"]
        user.press("We agreed a plan")
        wait_for_text(process, user, "What monthly amount did you agree?")
        user.send("1200")
        user.send("25")
        done = wait_for_text(process, user, "I will remind you to repay CN¥1,200.00")
        assert "before day 25" in done
        wait_for_text(process, user, "The first reminder comes on")
        assert process.reminders(user.chat_id) == 1  # the check-in answered, the reminder set
    finally:
        process.shift_to(datetime.now(UTC))
