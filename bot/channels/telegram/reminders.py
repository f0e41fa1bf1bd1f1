"""Reminders on Telegram: how a reminder, a check-in and `/reminders` look, and what
their buttons carry.

A reminder is one message with a "Paid, thanks" button (`r:p:{reminder id}:{due
date}`); `/reminders` is one message listing them with a "Cancel N" button each
(`r:x:{reminder id}:{N}`). A check-in is the engine's turn at the check-in question,
with the dialog's own buttons, like any other turn. Everything goes through the
outbox: the reminder loop renders here and commits, the `Delivery` sends.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from telegram import CallbackQuery, Message

from bot.channels.telegram.effects import (
    AnswerPress,
    EditText,
    Effect,
    SendText,
    chat_id_of,
    encode,
    turn_effects,
)
from bot.channels.telegram.render import MAX_MESSAGE, answered_html, button_label, escape
from bot.engine.engine import Engine
from bot.engine.turn import Msg, Turn
from bot.i18n.catalog import Localizer
from bot.reminders.desk import Listed
from bot.reminders.firing import Notice

PAID_PREFIX = "r:p"
CANCEL_PREFIX = "r:x"
_PAID_RE = re.compile(r"r:p:(\d{1,12}):(\d{8})")
_CANCEL_RE = re.compile(r"r:x:(\d{1,12}):(\d{1,4})")


@dataclass(frozen=True)
class PaidPress:
    """The "Paid, thanks" of reminder `reminder_id`, about the repayment due on `due`."""

    reminder_id: int
    due: date


@dataclass(frozen=True)
class CancelPress:
    """A "Cancel N" on the `/reminders` list."""

    reminder_id: int
    number: int


ReminderPress = PaidPress | CancelPress


def paid_data(reminder_id: int, due: date) -> str:
    """The callback data of a reminder's "Paid, thanks" button (at most 25 bytes)."""
    return f"{PAID_PREFIX}:{reminder_id}:{due:%Y%m%d}"


def cancel_data(reminder_id: int, number: int) -> str:
    """The callback data of a "Cancel N" button."""
    return f"{CANCEL_PREFIX}:{reminder_id}:{number}"


def parse_press(data: str | None) -> ReminderPress | None:
    """A reminder button's press, or None for any other callback data (forged ones too)."""
    if not data:
        return None
    if match := _PAID_RE.fullmatch(data):
        try:
            due = datetime.strptime(match.group(2), "%Y%m%d").date()
        except ValueError:
            return None
        return PaidPress(int(match.group(1)), due)
    if match := _CANCEL_RE.fullmatch(data):
        return CancelPress(int(match.group(1)), int(match.group(2)))
    return None


class TelegramReminders:
    """The channel's side of reminders. `engines` and `localizers` give the content in
    use now (a reload of the dialogs replaces it)."""

    def __init__(self, engines: Callable[[], Engine], localizers: Callable[[], Localizer]) -> None:
        self.engines = engines
        self.localizers = localizers

    def render(self, chat_key: str, item: Notice | Turn) -> list[dict[str, Any]]:
        """A reminder or a check-in's turn as outbox payloads (the reminder loop's `Render`);
        [] for a chat that is not a Telegram chat (the terminal's)."""
        try:
            chat_id_of(chat_key)
        except ValueError:
            return []
        localizer = self.localizers()
        if isinstance(item, Turn):
            return [encode(effect) for effect in turn_effects(item, localizer)]
        text = escape(localizer.text(item.text, item.locale))
        button = (localizer.text(item.paid.label, item.locale), paid_data(item.paid.reminder_id, item.paid.due))
        return [encode(SendText(text, (button,)))]

    def listing(self, listed: Sequence[Listed], locale: str) -> list[Effect]:
        """`/reminders`: the list, a "Cancel N" button for each line."""
        localizer, engine = self.localizers(), self.engines()
        if not listed:
            return [SendText(escape(localizer.text(engine.message("reminders_none"), locale)))]
        lines = [localizer.text(engine.message("reminders_title"), locale)]
        lines += [localizer.text(item.line, locale) for item in listed]
        buttons = tuple(
            (
                localizer.text(engine.message("reminders_cancel_button", number=item.number), locale),
                cancel_data(item.reminder.id, item.number),
            )
            for item in listed
        )
        return [SendText(escape("\n".join(lines)), buttons)]

    def pressed(self, query: CallbackQuery, reply: Msg, locale: str) -> list[Effect]:
        """What a reminder button's press shows: the spinner stopped, the message marked
        with what was pressed (its buttons gone), and the reply."""
        effects: list[Effect] = [AnswerPress(query.id)]
        message = query.message if isinstance(query.message, Message) else None
        if message is not None and message.text is not None:
            label = button_label(message.reply_markup, query.data)
            marked = answered_html(message.text_html, label) if label else message.text_html
            if len(marked) <= MAX_MESSAGE:
                effects.append(EditText(message.message_id, marked))
        effects.append(SendText(escape(self.localizers().text(reply, locale))))
        return effects
