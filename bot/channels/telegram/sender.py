"""The Bot API calls the Telegram channel makes: one effect (`effects`) at a time.

`perform` carries out an effect and lets every refusal propagate: what a failure means
(send again later, drop, the user blocked the bot) is decided by its caller, the
outbox's `delivery.Delivery`, which knows whether the effect was cosmetic.

Timeouts differ by what is at stake. A message or a photo waits long for Telegram's
answer (`SEND_TIMEOUTS`): a late answer is waited for rather than taken for a failure,
because sending again after Telegram had accepted the first would show the user the
message twice. "typing…", answers to presses and edits get short ones
(`COSMETIC_TIMEOUTS`): nothing is lost when they fail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TypedDict

from telegram import Bot, LinkPreviewOptions
from telegram import BotCommand as TgBotCommand
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest

from bot.channels.telegram.effects import (
    AnswerPress,
    EditText,
    Effect,
    RemoveButtons,
    ReplaceText,
    SendChart,
    SendReport,
    SendText,
    ShowTyping,
)
from bot.channels.telegram.ratelimit import patiently
from bot.channels.telegram.render import ChartPhoto, escape, keyboard, toast
from bot.stats.report import ReportChart

log = logging.getLogger(__name__)

# Links in the plan (hotlines, regulators) must not unfold into preview cards.
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class Timeouts(TypedDict):
    """Seconds for one Bot API call, as PTB's per-call keyword arguments."""

    connect_timeout: float
    read_timeout: float
    write_timeout: float
    pool_timeout: float


# PTB's default is 5 s to read the answer. Telegram occasionally answers a sendMessage
# after that although it delivered the message; a minute covers its slow moments.
SEND_TIMEOUTS = Timeouts(connect_timeout=10, read_timeout=60, write_timeout=60, pool_timeout=30)
COSMETIC_TIMEOUTS = Timeouts(connect_timeout=5, read_timeout=5, write_timeout=5, pool_timeout=5)


class TelegramSender:
    """Carries out effects through one PTB `Bot` (with its rate limiter)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def perform(self, chat_id: int, effect: Effect) -> None:
        """Carry out `effect` in chat `chat_id`; Telegram's refusals propagate."""
        if isinstance(effect, SendText):
            await self.send(chat_id, effect.html, effect.buttons)
        elif isinstance(effect, SendChart):
            await self.send_chart(chat_id, effect.chart, effect.buttons)
        elif isinstance(effect, SendReport):
            await self.send_report(chat_id, effect.chart, effect.caption)
        elif isinstance(effect, ReplaceText):
            await self.replace(chat_id, effect.message_id, effect.html)
        elif isinstance(effect, ShowTyping):
            await self.bot.send_chat_action(chat_id, ChatAction.TYPING, **COSMETIC_TIMEOUTS)
        elif isinstance(effect, AnswerPress):
            text = toast(effect.text) if effect.text else None
            await self.bot.answer_callback_query(effect.query_id, text=text, **COSMETIC_TIMEOUTS)
        elif isinstance(effect, EditText):
            await self.bot.edit_message_text(
                effect.html,
                chat_id=chat_id,
                message_id=effect.message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=None,
                link_preview_options=NO_PREVIEW,
                **COSMETIC_TIMEOUTS,
            )
        elif isinstance(effect, RemoveButtons):
            await self.bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=effect.message_id, reply_markup=None, **COSMETIC_TIMEOUTS
            )
        else:  # pragma: no cover - the union above is complete
            raise TypeError(f"unknown effect {type(effect).__name__}")

    async def send(self, chat_id: int, html: str, buttons: Sequence[tuple[str, str]] = ()) -> None:
        """One HTML message, with `buttons` as its inline keyboard."""
        await self.bot.send_message(
            chat_id,
            html,
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard(buttons),
            link_preview_options=NO_PREVIEW,
            **SEND_TIMEOUTS,
        )

    async def send_chart(self, chat_id: int, chart: ChartPhoto, buttons: Sequence[tuple[str, str]] = ()) -> None:
        """Draw the chart (in a worker thread: a render takes about 0.2 s) and send it as a photo."""
        # matplotlib costs about a second to import: only a process that draws pays it.
        from bot.channels.chart import Series, line_chart

        series = [Series(label, values, dashed) for label, values, dashed in chart.lines]
        png = await asyncio.to_thread(line_chart, series, chart.locale, chart.title, chart.x_axis, chart.y_axis)
        await self.bot.send_photo(
            chat_id,
            png,
            caption=escape(chart.title),
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard(buttons),
            **SEND_TIMEOUTS,
        )

    async def send_report(self, chat_id: int, chart: ReportChart, caption: str) -> None:
        """The funnel chart (drawn in a worker thread) as a photo with `caption` (HTML)."""
        from bot.stats.chart import draw  # matplotlib: imported by a process that draws

        png = await asyncio.to_thread(draw, chart)
        await self.bot.send_photo(chat_id, png, caption=caption, parse_mode=ParseMode.HTML, **SEND_TIMEOUTS)

    async def replace(self, chat_id: int, message_id: int | None, html: str) -> None:
        """Show `html` in place of message `message_id` (a confirmation), or as a new message."""
        if message_id is not None:
            try:
                await self.bot.edit_message_text(
                    html,
                    chat_id=chat_id,
                    message_id=message_id,
                    parse_mode=ParseMode.HTML,
                    reply_markup=None,
                    **SEND_TIMEOUTS,
                )
                return
            except BadRequest as error:
                if "not modified" in str(error).lower():
                    return  # already shows it (an earlier attempt got through)
                log.debug("message %s could not be edited; sending a new one", message_id)
        await self.send(chat_id, html)

    async def set_commands(self, commands: Sequence[tuple[str, str]], language_code: str | None = None) -> None:
        """The command menu for users of `language_code` (None: everyone else)."""
        menu = [TgBotCommand(name, description) for name, description in commands]
        await patiently(lambda: self.bot.set_my_commands(menu, language_code=language_code))
