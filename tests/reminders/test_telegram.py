"""How reminders look on Telegram and what their buttons carry (no network)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from telegram import CallbackQuery, Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message, User

from bot.channels.telegram.effects import AnswerPress, EditText, SendText, decode
from bot.channels.telegram.reminders import (
    CancelPress,
    PaidPress,
    TelegramReminders,
    cancel_data,
    paid_data,
    parse_press,
)
from bot.channels.telegram.render import MAX_CALLBACK_DATA, parse_callback
from bot.engine.engine import Engine
from bot.engine.events import Command, CommandName
from bot.engine.session import Session
from bot.engine.turn import Msg
from bot.i18n.catalog import Localizer
from bot.reminders.desk import Listed
from bot.reminders.firing import notice
from bot.reminders.rows import Kind, MonthlyRow
from bot.reminders.schedule import Monthly, next_occurrence
from bot.store.base import Reminder


def telegram(engine: Engine, localizer: Localizer) -> TelegramReminders:
    return TelegramReminders(lambda: engine, lambda: localizer)


def test_button_data_round_trips_and_fits() -> None:
    paid = paid_data(123456789012, date(2025, 3, 15))
    assert parse_press(paid) == PaidPress(123456789012, date(2025, 3, 15))
    assert len(paid.encode()) <= MAX_CALLBACK_DATA
    assert parse_press(cancel_data(42, 3)) == CancelPress(42, 3)
    for forged in (None, "", "r:p:1:20250230", "r:p:x:20250315", "r:x:1", "a:1:2", "r:p:1:2025031", "f:yes"):
        assert parse_press(forged) is None
    # The dialog's own buttons are not taken for a reminder's, nor the other way round.
    assert parse_callback(paid).__class__.__name__ == "InvalidData"


def test_a_reminder_is_one_message_with_its_paid_button(engine: Engine, localizer: Localizer) -> None:
    schedule = Monthly(15, 3, time(9), "Asia/Shanghai")
    first = next_occurrence(schedule, datetime(2025, 3, 1, tzinfo=UTC))
    reminder = MonthlyRow(schedule, "zh_CN", first)
    item = notice(engine, 9, reminder, "zh_CN", first.at)
    [payload] = telegram(engine, localizer).render("tg:77", item)
    effect = decode(payload)
    assert isinstance(effect, SendText)
    assert effect.html == "提醒：您的还款日是2025年3月15日周六，还有3天。请按时还款，至少还最低还款额，以免逾期。"
    assert effect.buttons == (("已还款，谢谢", "r:p:9:20250315"),)
    # The terminal's chat has no Telegram to go to.
    assert telegram(engine, localizer).render("terminal", item) == []


def test_a_checkin_is_the_dialogs_turn(engine: Engine, localizer: Localizer) -> None:
    session = Session("cardholder", "after_plan", "en", {"product": "credit_card"}, version=3)
    turn = engine.handle(session, Command(CommandName.CHECKIN))
    effects = [decode(p) for p in telegram(engine, localizer).render("tg:77", turn)]
    texts = [e.html for e in effects if isinstance(e, SendText)]
    assert "Did you reach your bank?" in texts[0]
    [buttons] = [e.buttons for e in effects if isinstance(e, SendText) and e.buttons]
    assert [label for label, _ in buttons] == ["We agreed a plan", "They refused", "Not yet"]
    assert [data for _, data in buttons] == ["a:4:0", "a:4:1", "a:4:2"]  # the moved session's version


def test_the_list_has_a_cancel_button_per_line(engine: Engine, localizer: Localizer) -> None:
    row = Reminder(5, "tg:1", datetime(2025, 3, 12, 1, tzinfo=UTC), {}, Kind.MONTHLY)
    listed = [Listed(1, row, Msg("one <b>")), Listed(2, Reminder(8, "tg:1", row.due_at, {}, Kind.CHECKIN), Msg("two"))]
    [effect] = telegram(engine, localizer).listing(listed, "en")
    assert isinstance(effect, SendText)
    assert effect.html == "Your reminders:\none &lt;b&gt;\ntwo"  # escaped
    assert effect.buttons == (("Cancel 1", "r:x:5:1"), ("Cancel 2", "r:x:8:2"))
    [none] = telegram(engine, localizer).listing([], "zh_CN")
    assert isinstance(none, SendText) and none.html == "您还没有提醒。发送 /remind 可以设置。" and not none.buttons


def test_a_press_is_answered_marked_and_replied(engine: Engine, localizer: Localizer) -> None:
    user = User(1, "Ann", False)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Paid, thanks", callback_data="r:p:9:20250315")]])
    message = Message(31, datetime(2025, 3, 12, tzinfo=UTC), Chat(1, "private"), text="Reminder", reply_markup=keyboard)
    query = CallbackQuery("q1", user, "ci", message=message, data="r:p:9:20250315")
    effects = telegram(engine, localizer).pressed(query, engine.message("reminder_paid_done"), "en")
    assert effects == [
        AnswerPress("q1"),
        EditText(31, "Reminder\n\n✅ <i>Paid, thanks</i>"),
        SendText("Well done! No more reminders about this month's repayment."),
    ]
