"""The Telegram router: PTB updates in, engine events through `Advisor`, an `Outcome` out.

Thin on purpose: the engine decides what to say and where the conversation goes; this
module only turns Telegram's shapes into events (`/back` → `Command(BACK)`, a button
→ `Chose(version, index)`) and hands turns to the sender (`sender.TelegramSender`).

Everything an update causes on Telegram is sent inside `deliver`, which `Advisor`
calls *before* it commits the new state: if sending fails for a passing reason
(network, 429 beyond the retries, the database), nothing is committed, the webhook
answers 503, and Telegram delivers the update again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable

from telegram import CallbackQuery, Message, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import ContextTypes

from bot.channels.telegram.outcome import Outcome
from bot.channels.telegram.render import (
    FORGET_NO,
    FORGET_YES,
    MAX_MESSAGE,
    ChoiceData,
    ForgetData,
    answered_html,
    button_label,
    escape,
    parse_callback,
    turn_html,
)
from bot.channels.telegram.sender import TelegramSender
from bot.conversations import Advisor
from bot.engine.commands import Slash, menu, parse_command
from bot.engine.events import Chose, Event, Said
from bot.engine.turn import Turn
from bot.store.base import StoreUnavailable

log = logging.getLogger(__name__)

CHAT_KEY_PREFIX = "tg"
# How many groups we remember having told "private chats only" (an LRU, per process).
GROUP_MEMORY = 10_000
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")


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


def chat_key(chat_id: int) -> str:
    """The store's key for a Telegram chat."""
    return f"{CHAT_KEY_PREFIX}:{chat_id}"


class TelegramAdapter:
    """Routes updates to `Advisor` and has `sender` show its turns as Telegram messages."""

    def __init__(self, advisor: Advisor, sender: TelegramSender, admin_ids: Iterable[int] = ()) -> None:
        self.advisor = advisor
        self.sender = sender
        # Telegram users (ADMIN_IDS) who may ask for /stats; to everyone else it is unknown.
        self.admin_ids = frozenset(admin_ids)
        self.localizer = advisor.localizer
        self.engine = advisor.engine
        self._told_groups: OrderedDict[int, None] = OrderedDict()

    chat_key = staticmethod(chat_key)

    def say(self, key: str, locale: str) -> str:
        """One of the advisor's own texts (messages.yaml), translated."""
        return self.localizer.text(self.engine.message(key), locale)

    def user_locale(self, user: User | None) -> str:
        """The locale a user's Telegram language picks (for a new conversation)."""
        return self.localizer.locale_for(user.language_code if user else None)

    def menu(self, locale: str) -> list[tuple[str, str]]:
        """(command, description) for the menu, from the command table, translated."""
        # Telegram allows at most 256 characters of description.
        return [(spec.name.value, self.localizer.translate(spec.description, locale)[:256]) for spec in menu()]

    async def set_commands(self) -> None:
        """Register the command menu: English by default, each other language for its users."""
        for locale in self.localizer.locales:
            language = None if locale.startswith("en") else locale.split("_")[0]
            await self.sender.set_commands(self.menu(locale), language)

    # --- one update ---------------------------------------------------------------------

    async def handle(self, update: Update) -> Outcome:
        """Apply one update; never raises. A passing failure is `Outcome.RETRY` (nothing
        committed); a bug is `Outcome.FAILED`, after an apology to the user."""
        try:
            return await self._route(update)
        except Exception as error:
            if is_transient(error):
                # Only the type: exception texts may quote what the user wrote.
                log.warning(
                    "update %s not applied (%s); Telegram will deliver it again",
                    update.update_id,
                    type(error).__name__,
                )
                return Outcome.RETRY
            log.error("update %s failed", update.update_id, exc_info=error)
            await self._apologise(update)
            return Outcome.FAILED

    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """PTB's handler callback (polling): PTB has no use for the outcome."""
        await self.handle(update)

    async def _route(self, update: Update) -> Outcome:
        if update.callback_query is not None:
            return await self._on_callback(update, update.callback_query)
        if update.my_chat_member is not None:
            member = update.my_chat_member
            joined = member.new_chat_member.status in (
                ChatMemberStatus.MEMBER,
                ChatMemberStatus.ADMINISTRATOR,
            )
            if member.chat.type != ChatType.PRIVATE and joined:
                return await self._private_only(member.chat.id, member.from_user)
            return Outcome.IGNORED
        message = update.message
        if message is None:
            return Outcome.IGNORED
        if message.chat.type != ChatType.PRIVATE:
            return await self._private_only(message.chat.id, message.from_user)
        text = message.text if message.text is not None else (message.caption or "")
        if text.startswith("/"):
            return await self._on_command(update, message, text)
        return await self._converse(update, message.chat.id, message.from_user, Said(text))

    async def _on_command(self, update: Update, message: Message, text: str) -> Outcome:
        command = parse_command(text)
        user = message.from_user
        chat_id = message.chat.id
        admin = user is not None and user.id in self.admin_ids
        if command is None or (command.spec.admin_only and not admin):
            # Unknown here, so a typo does not touch the conversation.
            locale = await self._chat_locale(chat_id, user)
            await self.sender.send(chat_id, escape(self.say("unknown_command", locale)))
            return Outcome.HANDLED
        if command.name is Slash.FORGET:
            return await self._ask_forget(chat_id, user)
        if command.name is Slash.STATS:
            return await self._send_stats(chat_id, user)
        event = command.event(self.user_locale(user))
        if event is None:  # pragma: no cover - a table row without code to carry it out
            raise NotImplementedError(f"/{command.name} has no handler on Telegram")
        return await self._converse(update, chat_id, user, event)

    async def _converse(
        self,
        update: Update,
        chat_id: int,
        user: User | None,
        event: Event,
        query: CallbackQuery | None = None,
    ) -> Outcome:
        async def deliver(turn: Turn) -> None:
            if query is not None and isinstance(event, Chose):
                await self._settle_press(query, turn)
            await self.send_turn(chat_id, turn)

        turn = await self.advisor.handle(
            chat_key(chat_id),
            event,
            update_id=update.update_id,
            deliver=deliver,
            locale=self.user_locale(user),
        )
        return Outcome.DUPLICATE if turn is None else Outcome.HANDLED

    async def send_turn(self, chat_id: int, turn: Turn) -> None:
        """A turn as messages: its blocks, then the question with its buttons on the last."""
        messages, buttons = turn_html(turn, self.localizer)
        await self.sender.send_all(chat_id, messages, buttons)

    async def _send_stats(self, chat_id: int, user: User | None) -> Outcome:
        """Anonymous usage counts for an operator: no chat, no text, only numbers."""
        locale = await self._chat_locale(chat_id, user)
        counts = await self.advisor.store.stats()
        lines = [f"{name}: {count}" for name, count in sorted(counts.items())]
        body = "\n".join([self.say("stats_title", locale), *lines])
        await self.sender.send(chat_id, f"<code>{escape(body)}</code>")
        return Outcome.HANDLED

    # --- buttons ------------------------------------------------------------------------

    async def _on_callback(self, update: Update, query: CallbackQuery) -> Outcome:
        message = query.message
        chat = message.chat if message is not None else None
        if chat is None or chat.type != ChatType.PRIVATE:
            locale = self.user_locale(query.from_user)
            await self.sender.answer(query, self.say("private_only", locale))
            return Outcome.IGNORED
        data = parse_callback(query.data)
        if isinstance(data, ForgetData):
            return await self._on_forget(update, query, chat.id, data.confirmed)
        # A forged or foreign button is just a stale one the engine will not accept.
        event = Chose(data.version, data.index) if isinstance(data, ChoiceData) else Chose(-1, -1)
        return await self._converse(update, chat.id, query.from_user, event, query)

    async def _settle_press(self, query: CallbackQuery, turn: Turn) -> None:
        """Answer the button press; mark the question answered, or explain it moved on."""
        message = query.message if isinstance(query.message, Message) else None
        if turn.stale:
            await self.sender.answer(query, self.say("stale_button", turn.session.locale))
            if message is not None and message.reply_markup is not None:
                # Take the dead buttons away so they are not pressed again.
                await self.sender.edit_markup(message)
            return
        await self.sender.answer(query, None)
        if message is None or message.text is None:
            return
        label = button_label(message.reply_markup, query.data)
        text = answered_html(message.text_html, label) if label else message.text_html
        if len(text) <= MAX_MESSAGE:
            await self.sender.edit_text(message, text)
        else:
            await self.sender.edit_markup(message)

    # --- /forget --------------------------------------------------------------------------

    async def _ask_forget(self, chat_id: int, user: User | None) -> Outcome:
        locale = await self._chat_locale(chat_id, user)
        buttons = [
            (self.say("forget_button", locale), FORGET_YES),
            (self.say("cancel_button", locale), FORGET_NO),
        ]
        await self.sender.send(chat_id, escape(self.say("forget_confirm", locale)), buttons)
        return Outcome.HANDLED

    async def _on_forget(self, update: Update, query: CallbackQuery, chat_id: int, confirmed: bool) -> Outcome:
        # Read the language before erasing: afterwards there is nothing left to read.
        locale = await self._chat_locale(chat_id, query.from_user)
        message = query.message if isinstance(query.message, Message) else None
        if not confirmed:
            await self.sender.answer(query, None)
            await self.sender.replace(chat_id, message, escape(self.say("forget_cancelled", locale)))
            return Outcome.HANDLED
        erased = await self.advisor.forget(chat_key(chat_id), update_id=update.update_id)
        if not erased:
            return Outcome.DUPLICATE
        await self.sender.answer(query, None)
        await self.sender.replace(chat_id, message, escape(self.say("forget_done", locale)))
        log.info("chat erased on request (update %s)", update.update_id)
        return Outcome.HANDLED

    # --- groups, floods, errors ---------------------------------------------------------

    async def _private_only(self, chat_id: int, user: User | None) -> Outcome:
        if chat_id in self._told_groups:
            self._told_groups.move_to_end(chat_id)
            return Outcome.IGNORED
        self._told_groups[chat_id] = None
        while len(self._told_groups) > GROUP_MEMORY:
            self._told_groups.popitem(last=False)
        locale = self.user_locale(user)
        await self.sender.send(chat_id, escape(self.say("private_only", locale)))
        return Outcome.HANDLED

    async def one_moment(self, update: Update) -> None:
        """The single polite notice a flooding chat gets (see `ChatOrderedProcessor`)."""
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return
        locale = self.user_locale(update.effective_user)
        await self.sender.send(chat.id, escape(self.say("one_moment", locale)))

    async def _apologise(self, update: Update) -> None:
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return
        try:
            locale = self.user_locale(update.effective_user)
            await self.sender.send(chat.id, escape(self.say("error", locale)))
            if update.callback_query is not None:
                await self.sender.answer(update.callback_query, None)
        except Exception:
            log.warning("could not send the error notice either", exc_info=True)

    async def _chat_locale(self, chat_id: int, user: User | None) -> str:
        """The conversation's language if there is one, else the user's Telegram language."""
        try:
            session = await self.advisor.store.load(chat_key(chat_id))
        except StoreUnavailable:
            session = None
        return session.locale if session is not None else self.user_locale(user)
