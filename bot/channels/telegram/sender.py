"""The Bot API calls the Telegram channel makes, and what each does when Telegram refuses.

The router (`adapter.TelegramAdapter`) decides what to send; this module only sends it:
HTML messages with their keyboard, "typing…", callback answers, edits. Failures that
are cosmetic (an edit of a message that is gone, a callback query too old) are logged
at DEBUG and swallowed; a user who blocked the bot is logged without any detail.
Anything else (network, 429 beyond the rate limiter's retries) propagates, so the
update is not committed and Telegram delivers it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from telegram import Bot, CallbackQuery, LinkPreviewOptions, Message
from telegram import BotCommand as TgBotCommand
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden

from bot.channels.telegram.render import TYPING_THRESHOLD, ChartPhoto, Outgoing, escape, keyboard, toast

log = logging.getLogger(__name__)

# Links in the plan (hotlines, regulators) must not unfold into preview cards.
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

Buttons = Sequence[tuple[str, str]]  # (label, callback data)


class TelegramSender:
    """Sends through one PTB `Bot` (with its rate limiter)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: int, html: str, buttons: Buttons = ()) -> None:
        """One HTML message, with `buttons` as its inline keyboard."""
        try:
            await self.bot.send_message(
                chat_id,
                html,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(buttons),
                link_preview_options=NO_PREVIEW,
            )
        except Forbidden:
            # The user blocked the bot: nothing can reach them, and retrying will not help.
            log.info("a user blocked the bot; reply not delivered")

    async def send_all(self, chat_id: int, messages: Sequence[Outgoing], buttons: Buttons = ()) -> None:
        """Several messages in order, the keyboard on the last; "typing…" first when long."""
        if len(messages) > 1 or sum(len(m) for m in messages if isinstance(m, str)) > TYPING_THRESHOLD:
            await self.typing(chat_id)
        for number, item in enumerate(messages, start=1):
            keys = buttons if number == len(messages) else ()
            if isinstance(item, ChartPhoto):
                await self.send_chart(chat_id, item, keys)
            else:
                await self.send(chat_id, item, keys)

    async def send_chart(self, chat_id: int, chart: ChartPhoto, buttons: Buttons = ()) -> None:
        """Draw the chart (in a worker thread: a render takes about 0.2 s) and send it as a photo."""
        # matplotlib costs about a second to import: only a process that draws pays it.
        from bot.channels.chart import Series, line_chart

        series = [Series(label, values, dashed) for label, values, dashed in chart.lines]
        png = await asyncio.to_thread(line_chart, series, chart.locale, chart.title, chart.x_axis, chart.y_axis)
        try:
            await self.bot.send_photo(
                chat_id, png, caption=escape(chart.title), parse_mode=ParseMode.HTML, reply_markup=keyboard(buttons)
            )
        except Forbidden:
            log.info("a user blocked the bot; chart not delivered")

    async def typing(self, chat_id: int) -> None:
        """Show "typing…"; cosmetic, so it never fails a reply."""
        with contextlib.suppress(BadRequest, Forbidden):
            await self.bot.send_chat_action(chat_id, ChatAction.TYPING)

    async def answer(self, query: CallbackQuery, text: str | None) -> None:
        """Answer a button press (stops its spinner), with an optional toast."""
        try:
            await self.bot.answer_callback_query(query.id, text=toast(text) if text else None)
        except BadRequest:
            # The query is too old (a re-delivered update): the press is still handled.
            log.debug("callback query %s could not be answered", query.id)

    async def edit_text(self, message: Message, html: str) -> None:
        """Replace a message's text and remove its keyboard; cosmetic."""
        try:
            await self.bot.edit_message_text(
                html,
                chat_id=message.chat.id,
                message_id=message.message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=None,
                link_preview_options=NO_PREVIEW,
            )
        except (BadRequest, Forbidden):
            # Not modified (already edited by an earlier delivery) or gone: cosmetic.
            log.debug("message %s not edited", message.message_id)

    async def edit_markup(self, message: Message) -> None:
        """Remove a message's keyboard; cosmetic."""
        try:
            await self.bot.edit_message_reply_markup(
                chat_id=message.chat.id, message_id=message.message_id, reply_markup=None
            )
        except (BadRequest, Forbidden):
            log.debug("keyboard of message %s not removed", message.message_id)

    async def replace(self, chat_id: int, message: Message | None, html: str) -> None:
        """Show `html` in place of `message` (a confirmation), or as a new message."""
        if message is not None:
            try:
                await self.bot.edit_message_text(
                    html,
                    chat_id=chat_id,
                    message_id=message.message_id,
                    parse_mode=ParseMode.HTML,
                    reply_markup=None,
                )
                return
            except BadRequest:
                pass  # too old to edit: say it in a new message
        await self.send(chat_id, html)

    async def set_commands(self, commands: Sequence[tuple[str, str]], language_code: str | None = None) -> None:
        """The command menu for users of `language_code` (None: everyone else)."""
        menu = [TgBotCommand(name, description) for name, description in commands]
        if language_code is None:
            await self.bot.set_my_commands(menu)
        else:
            await self.bot.set_my_commands(menu, language_code=language_code)
