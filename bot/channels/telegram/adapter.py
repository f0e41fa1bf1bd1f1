"""The Telegram adapter: PTB updates in, engine events through `Advisor`, HTML out.

Thin on purpose: the engine decides what to say and where the conversation goes; this
module only turns Telegram's shapes into events (`/back` → `Command(BACK)`, a button
→ `Chose(version, index)`) and a `Turn` into messages, keyboards and edits.

Everything an update causes on Telegram is sent inside `deliver`, which `Advisor`
calls *before* it commits the new state: if sending fails for a passing reason
(network, 429 beyond the retries, the database), nothing is committed, the webhook
answers 503, and Telegram delivers the update again.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from telegram import (
    Bot,
    CallbackQuery,
    LinkPreviewOptions,
    Message,
    Update,
    User,
)
from telegram import BotCommand as TgBotCommand
from telegram.constants import ChatAction, ChatMemberStatus, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.channels.plain import render_blocks
from bot.channels.telegram.render import (
    FORGET_NO,
    FORGET_YES,
    MAX_MESSAGE,
    TYPING_THRESHOLD,
    ChoiceData,
    ForgetData,
    answered_html,
    button_label,
    choice_data,
    escape,
    keyboard,
    pack_messages,
    parse_callback,
    pieces_html,
    question_fragments,
    toast,
)
from bot.conversations import Advisor
from bot.engine.events import Chose, Command, CommandName, Event, Said, Start
from bot.engine.turn import Turn
from bot.store.base import StoreUnavailable

log = logging.getLogger(__name__)

CHAT_KEY_PREFIX = "tg"
# How many groups we remember having told "private chats only" (an LRU, per process).
GROUP_MEMORY = 10_000
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
# Links in the plan (hotlines, regulators) must not unfold into preview cards.
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

_COMMANDS = {
    "restart": CommandName.RESTART,
    "back": CommandName.BACK,
    "language": CommandName.LANGUAGE,
    "lang": CommandName.LANGUAGE,
    "help": CommandName.HELP,
}
# The command menu (setMyCommands). The descriptions are read from the localized
# /help text ("/back – go back one question"), so operators edit them in one place;
# these English ones are only the fallback for a line the help text lacks.
MENU = ("start", "restart", "back", "language", "help", "forget")
MENU_FALLBACK = {
    "start": "Start the conversation",
    "restart": "Start over",
    "back": "Go back one question",
    "language": "Switch between Chinese and English",
    "help": "What I can do",
    "forget": "Erase everything I know about you",
}
_HELP_LINE = re.compile(r"^\s*/([a-z_]{1,32})\s*[-–—:：]\s*(.+?)\s*$")


@dataclass
class UpdateOutcome:
    """What became of one update, for the webhook's answer and its metrics.

    `result` is one of: ok, duplicate (applied before), ignored (nothing to do),
    dropped (chat backlog full), error (a bug: answered, logged, not retried),
    retry (a passing failure: nothing committed, Telegram should deliver it again).
    """

    kind: str = "other"
    result: str = "ignored"


# The webhook puts a fresh outcome here for each request; handlers fill it in.
OUTCOME: ContextVar[UpdateOutcome | None] = ContextVar("telegram_update_outcome", default=None)


def update_kind(update: Update) -> str:
    """The update's type, as Telegram names its field (for metrics)."""
    if update.callback_query is not None:
        return "callback_query"
    if update.my_chat_member is not None:
        return "my_chat_member"
    if update.message is not None:
        text = update.message.text or ""
        return "command" if text.startswith("/") else "message"
    return "other"


def is_transient(error: BaseException) -> bool:
    """A failure worth Telegram delivering the update again (nothing was committed)."""
    if isinstance(error, BadRequest):
        return False  # our request was wrong: sending it again would fail again
    return isinstance(error, (TimedOut, RetryAfter, NetworkError, StoreUnavailable, OSError))


class TelegramAdapter:
    """Routes PTB updates to `Advisor` and renders its turns as Telegram messages."""

    def __init__(self, advisor: Advisor, admin_ids: Iterable[int] = ()) -> None:
        self.advisor = advisor
        # Telegram users (ADMIN_IDS) who may ask for /stats; to everyone else it is unknown.
        self.admin_ids = frozenset(admin_ids)
        self.localizer = advisor.localizer
        self.engine = advisor.engine
        self._told_groups: OrderedDict[int, None] = OrderedDict()

    # --- wiring -------------------------------------------------------------------------

    def register(self, application: Application) -> None:  # type: ignore[type-arg]
        """Add the one handler that routes every update."""
        application.add_handler(TypeHandler(Update, self.on_update))

    @staticmethod
    def chat_key(chat_id: int) -> str:
        """The store's key for a Telegram chat."""
        return f"{CHAT_KEY_PREFIX}:{chat_id}"

    def say(self, key: str, locale: str) -> str:
        """One of the advisor's own texts (messages.yaml), translated."""
        return self.localizer.text(self.engine.message(key), locale)

    def user_locale(self, user: User | None) -> str:
        """The locale a user's Telegram language picks (for a new conversation)."""
        return self.localizer.locale_for(user.language_code if user else None)

    async def set_commands(self, bot: Bot) -> None:
        """Register the command menu: English by default, Chinese for `zh` users."""
        for locale in self.localizer.locales:
            commands = [TgBotCommand(name, desc) for name, desc in self.menu(locale)]
            if locale.startswith("en"):
                await bot.set_my_commands(commands)
            else:
                await bot.set_my_commands(commands, language_code=locale.split("_")[0])

    def menu(self, locale: str) -> list[tuple[str, str]]:
        """(command, description) for the menu, taken from the localized /help text."""
        found: dict[str, str] = {}
        for line in self.say("help", locale).splitlines():
            match = _HELP_LINE.match(line)
            if match:
                description = match.group(2)[:256]
                found.setdefault(match.group(1), description[:1].upper() + description[1:])
        return [(name, found.get(name) or MENU_FALLBACK[name]) for name in MENU]

    # --- one update ---------------------------------------------------------------------

    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """PTB's callback for every update; never raises (PTB would only log it)."""
        outcome = OUTCOME.get() or UpdateOutcome()
        outcome.kind = update_kind(update)
        try:
            outcome.result = await self._route(update, context.bot)
        except Exception as error:
            if is_transient(error):
                outcome.result = "retry"
                # Only the type: exception texts may quote what the user wrote.
                log.warning(
                    "update %s not applied (%s); Telegram will deliver it again",
                    update.update_id,
                    type(error).__name__,
                )
                return
            outcome.result = "error"
            log.error("update %s failed", update.update_id, exc_info=error)
            await self._apologise(update, context.bot)

    async def _route(self, update: Update, bot: Bot) -> str:
        if update.callback_query is not None:
            return await self._on_callback(update, update.callback_query, bot)
        if update.my_chat_member is not None:
            member = update.my_chat_member
            joined = member.new_chat_member.status in (
                ChatMemberStatus.MEMBER,
                ChatMemberStatus.ADMINISTRATOR,
            )
            if member.chat.type != ChatType.PRIVATE and joined:
                return await self._private_only(member.chat.id, member.from_user, bot)
            return "ignored"
        message = update.message
        if message is None:
            return "ignored"
        if message.chat.type != ChatType.PRIVATE:
            return await self._private_only(message.chat.id, message.from_user, bot)
        text = message.text if message.text is not None else (message.caption or "")
        if text.startswith("/"):
            return await self._on_command(update, message, text, bot)
        return await self._converse(update, message.chat.id, message.from_user, Said(text), bot)

    async def _on_command(self, update: Update, message: Message, text: str, bot: Bot) -> str:
        head, _, argument = text.partition(" ")
        name = head[1:].split("@", 1)[0].lower()
        user = message.from_user
        chat_id = message.chat.id
        if name == "start":
            event: Event = Start(locale=self.user_locale(user))
        elif name == "forget":
            return await self._ask_forget(chat_id, user, bot)
        elif name in _COMMANDS:
            event = Command(_COMMANDS[name], argument.strip())
        elif name == "stats" and user is not None and user.id in self.admin_ids:
            return await self._send_stats(chat_id, user, bot)
        else:
            locale = await self._chat_locale(chat_id, user)
            await self._send(bot, chat_id, escape(self.say("unknown_command", locale)))
            return "ok"
        return await self._converse(update, chat_id, user, event, bot)

    async def _converse(
        self,
        update: Update,
        chat_id: int,
        user: User | None,
        event: Event,
        bot: Bot,
        query: CallbackQuery | None = None,
    ) -> str:
        async def deliver(turn: Turn) -> None:
            if query is not None and isinstance(event, Chose):
                await self._settle_press(bot, query, turn)
            await self.send_turn(bot, chat_id, turn)

        turn = await self.advisor.handle(
            self.chat_key(chat_id),
            event,
            update_id=update.update_id,
            deliver=deliver,
            locale=self.user_locale(user),
        )
        return "duplicate" if turn is None else "ok"

    async def _send_stats(self, chat_id: int, user: User, bot: Bot) -> str:
        """Anonymous usage counts for an operator: no chat, no text, only numbers."""
        locale = await self._chat_locale(chat_id, user)
        counts = await self.advisor.store.stats()
        lines = [f"{name}: {count}" for name, count in sorted(counts.items())]
        body = "\n".join([self.say("stats_title", locale), *lines])
        await self._send(bot, chat_id, f"<code>{escape(body)}</code>")
        return "ok"

    # --- buttons ------------------------------------------------------------------------

    async def _on_callback(self, update: Update, query: CallbackQuery, bot: Bot) -> str:
        message = query.message
        chat = message.chat if message is not None else None
        if chat is None or chat.type != ChatType.PRIVATE:
            locale = self.user_locale(query.from_user)
            await self._answer(bot, query, self.say("private_only", locale))
            return "ignored"
        data = parse_callback(query.data)
        if isinstance(data, ForgetData):
            return await self._on_forget(update, query, chat.id, data.confirmed, bot)
        # A forged or foreign button is just a stale one the engine will not accept.
        event = Chose(data.version, data.index) if isinstance(data, ChoiceData) else Chose(-1, -1)
        return await self._converse(update, chat.id, query.from_user, event, bot, query)

    async def _settle_press(self, bot: Bot, query: CallbackQuery, turn: Turn) -> None:
        """Answer the button press; mark the question answered, or explain it moved on."""
        message = query.message if isinstance(query.message, Message) else None
        if turn.stale:
            await self._answer(bot, query, self.say("stale_button", turn.session.locale))
            if message is not None and message.reply_markup is not None:
                # Take the dead buttons away so they are not pressed again.
                await self._edit_markup(bot, message)
            return
        await self._answer(bot, query, None)
        if message is None or message.text is None:
            return
        label = button_label(message.reply_markup, query.data)
        text = answered_html(message.text_html, label) if label else message.text_html
        if len(text) <= MAX_MESSAGE:
            await self._edit_text(bot, message, text)
        else:
            await self._edit_markup(bot, message)

    # --- /forget --------------------------------------------------------------------------

    async def _ask_forget(self, chat_id: int, user: User | None, bot: Bot) -> str:
        locale = await self._chat_locale(chat_id, user)
        buttons = [
            (self.say("forget_button", locale), FORGET_YES),
            (self.say("cancel_button", locale), FORGET_NO),
        ]
        await self._send(bot, chat_id, escape(self.say("forget_confirm", locale)), buttons)
        return "ok"

    async def _on_forget(self, update: Update, query: CallbackQuery, chat_id: int, confirmed: bool, bot: Bot) -> str:
        # Read the language before erasing: afterwards there is nothing left to read.
        locale = await self._chat_locale(chat_id, query.from_user)
        message = query.message if isinstance(query.message, Message) else None
        if not confirmed:
            await self._answer(bot, query, None)
            await self._replace(bot, chat_id, message, escape(self.say("forget_cancelled", locale)))
            return "ok"
        erased = await self.advisor.forget(self.chat_key(chat_id), update_id=update.update_id)
        if not erased:
            return "duplicate"
        await self._answer(bot, query, None)
        await self._replace(bot, chat_id, message, escape(self.say("forget_done", locale)))
        log.info("chat erased on request (update %s)", update.update_id)
        return "ok"

    # --- groups, floods, errors ---------------------------------------------------------

    async def _private_only(self, chat_id: int, user: User | None, bot: Bot) -> str:
        if chat_id in self._told_groups:
            self._told_groups.move_to_end(chat_id)
            return "ignored"
        self._told_groups[chat_id] = None
        while len(self._told_groups) > GROUP_MEMORY:
            self._told_groups.popitem(last=False)
        locale = self.user_locale(user)
        await self._send(bot, chat_id, escape(self.say("private_only", locale)))
        return "ok"

    async def one_moment(self, update: Update, bot: Bot) -> None:
        """The single polite notice a flooding chat gets (see `ChatOrderedProcessor`)."""
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return
        locale = self.user_locale(update.effective_user)
        await self._send(bot, chat.id, escape(self.say("one_moment", locale)))

    async def _apologise(self, update: Update, bot: Bot) -> None:
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return
        try:
            locale = self.user_locale(update.effective_user)
            await self._send(bot, chat.id, escape(self.say("error", locale)))
            if update.callback_query is not None:
                await self._answer(bot, update.callback_query, None)
        except Exception:
            log.warning("could not send the error notice either", exc_info=True)

    async def _chat_locale(self, chat_id: int, user: User | None) -> str:
        """The conversation's language if there is one, else the user's Telegram language."""
        try:
            session = await self.advisor.store.load(self.chat_key(chat_id))
        except StoreUnavailable:
            session = None
        return session.locale if session is not None else self.user_locale(user)

    # --- sending ------------------------------------------------------------------------

    async def send_turn(self, bot: Bot, chat_id: int, turn: Turn) -> None:
        """Send a turn: its blocks, then the question with its buttons on the last message."""
        locale = turn.session.locale
        fragments = pieces_html(render_blocks(turn, self.localizer, locale))
        buttons: list[tuple[str, str]] = []
        if turn.question is not None:
            question = turn.question
            fragments += question_fragments(self.localizer.text(question.prompt, locale))
            buttons = [
                (
                    self.localizer.text(option.label, locale),
                    choice_data(question.version, option.index),
                )
                for option in question.options
            ]
        messages = pack_messages(fragments)
        if len(messages) > 1 or sum(map(len, messages)) > TYPING_THRESHOLD:
            await self._typing(bot, chat_id)
        for number, text in enumerate(messages, start=1):
            await self._send(bot, chat_id, text, buttons if number == len(messages) else ())

    async def _send(self, bot: Bot, chat_id: int, html: str, buttons: tuple[()] | list[tuple[str, str]] = ()) -> None:
        try:
            await bot.send_message(
                chat_id,
                html,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(buttons),
                link_preview_options=NO_PREVIEW,
            )
        except Forbidden:
            # The user blocked the bot: nothing can reach them, and retrying will not help.
            log.info("a user blocked the bot; reply not delivered")

    async def _typing(self, bot: Bot, chat_id: int) -> None:
        with contextlib.suppress(BadRequest, Forbidden):  # cosmetic: never fail a reply on it
            await bot.send_chat_action(chat_id, ChatAction.TYPING)

    async def _answer(self, bot: Bot, query: CallbackQuery, text: str | None) -> None:
        try:
            await bot.answer_callback_query(query.id, text=toast(text) if text else None)
        except BadRequest:
            # The query is too old (a re-delivered update): the press is still handled.
            log.debug("callback query %s could not be answered", query.id)

    async def _edit_text(self, bot: Bot, message: Message, html: str) -> None:
        try:
            await bot.edit_message_text(
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

    async def _edit_markup(self, bot: Bot, message: Message) -> None:
        try:
            await bot.edit_message_reply_markup(
                chat_id=message.chat.id, message_id=message.message_id, reply_markup=None
            )
        except (BadRequest, Forbidden):
            log.debug("keyboard of message %s not removed", message.message_id)

    async def _replace(self, bot: Bot, chat_id: int, message: Message | None, html: str) -> None:
        """Show `html` in place of a confirmation message (or as a new one)."""
        if message is not None:
            try:
                await bot.edit_message_text(
                    html,
                    chat_id=chat_id,
                    message_id=message.message_id,
                    parse_mode=ParseMode.HTML,
                    reply_markup=None,
                )
                return
            except BadRequest:
                pass  # too old to edit: say it in a new message
        await self._send(bot, chat_id, html)
