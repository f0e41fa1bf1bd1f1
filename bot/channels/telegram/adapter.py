"""The Telegram router: PTB updates in, engine events through `Advisor`, an `Outcome` out.

Thin on purpose: the engine decides what to say and where the conversation goes; this
module only turns Telegram's shapes into events (`/back` → `Command(BACK)`, a button
→ `Chose(version, index)`) and a turn into effects (`effects`: messages, the chart,
"typing…", the answer to a press, the edit that marks a question answered).

The effects are not sent here. They are committed into the chat's outbox in the same
transaction as the new session and the update id (`Advisor.handle`; `Advisor.reply`
for replies that change no conversation), and the outbox's `Delivery` sends them after
the commit. So the webhook can answer 200 as soon as the commit is done; a failed
commit sends nothing and answers 503 (Telegram delivers the update again); a redelivered
update is a duplicate and sends nothing twice. The one exception is the "done" after
`/forget`: the erase must leave no outbox row naming the chat, so it is sent directly
(an erase is idempotent: a redelivery erases nothing and says it again).
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from telegram import CallbackQuery, Message, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import ContextTypes

from bot.channels.telegram.delivery import Delivery
from bot.channels.telegram.effects import (
    AnswerPress,
    EditText,
    Effect,
    RemoveButtons,
    ReplaceText,
    SendReport,
    SendText,
    chat_key,
    encode,
    turn_effects,
)
from bot.channels.telegram.outcome import Outcome
from bot.channels.telegram.reminders import PaidPress, ReminderPress, TelegramReminders, parse_press
from bot.channels.telegram.render import (
    FORGET_NO,
    FORGET_YES,
    MAX_MESSAGE,
    ChoiceData,
    ForgetData,
    answered_html,
    button_label,
    escape,
    pack_messages,
    parse_callback,
)
from bot.channels.telegram.sender import TelegramSender
from bot.conversations import Advisor
from bot.engine.commands import Slash, menu, parse_command
from bot.engine.engine import Engine
from bot.engine.events import Chose, Event, Said
from bot.engine.session import Session
from bot.engine.turn import Msg, Turn
from bot.i18n.catalog import Localizer
from bot.reminders.desk import ReminderDesk
from bot.stats.report import build_report, chart_of, render_sections, render_summary
from bot.store.base import StoreUnavailable

if TYPE_CHECKING:
    from bot.runtime import ContentReloader

log = logging.getLogger(__name__)

# How many groups we remember having told "private chats only" (an LRU, per process).
GROUP_MEMORY = 10_000
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")

# What a reply says, given the language it is said in.
Say = Callable[[str], list[Effect]]

__all__ = ["ALLOWED_UPDATES", "TelegramAdapter", "chat_key", "is_transient", "update_kind"]


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
    """Routes updates to `Advisor`; their effects go to the outbox, which `delivery` sends."""

    def __init__(
        self,
        advisor: Advisor,
        sender: TelegramSender,
        admin_ids: Iterable[int] = (),
        delivery: Delivery | None = None,
        reloader: ContentReloader | None = None,
    ) -> None:
        self.advisor = advisor
        self.sender = sender
        # Without one (tools, tests), committed effects stay in the outbox for a sweep.
        self.delivery = delivery
        # What /reload runs (and SIGHUP, in the webhook); without one, /reload is unknown.
        self.reloader = reloader
        # Telegram users (ADMIN_IDS) who may send /stats and /reload; to everyone else they are unknown.
        self.admin_ids = frozenset(admin_ids)
        self._told_groups: OrderedDict[int, None] = OrderedDict()
        # Reminders: how they look here (also for the reminder loop), and /reminders,
        # "Cancel N" and "Paid, thanks" (bot/reminders).
        self.reminders = TelegramReminders(lambda: advisor.engine, lambda: advisor.localizer)
        self.desk = ReminderDesk(advisor.store, lambda: advisor.engine, clock=advisor.clock)

    chat_key = staticmethod(chat_key)

    # The advisor's, read each time: a reload (SIGHUP, /reload) replaces them.
    @property
    def engine(self) -> Engine:
        return self.advisor.engine

    @property
    def localizer(self) -> Localizer:
        return self.advisor.localizer

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
                return await self._private_only(update, member.chat.id, member.from_user)
            return Outcome.IGNORED
        message = update.message
        if message is None:
            return Outcome.IGNORED
        if message.chat.type != ChatType.PRIVATE:
            return await self._private_only(update, message.chat.id, message.from_user)
        text = message.text if message.text is not None else (message.caption or "")
        if not isinstance(text, str):
            # Not a shape Telegram sends (PTB does not check types): nothing to read, and
            # not a bug of ours to apologise for.
            log.info("update %s has a text that is not text; ignored", update.update_id)
            return Outcome.IGNORED
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
            return await self._reply(update, chat_id, user, self._text("unknown_command"))
        if command.name is Slash.FORGET:
            return await self._reply(update, chat_id, user, self._forget_question)
        if command.name is Slash.STATS:
            return await self._send_stats(update, chat_id, user)
        if command.name is Slash.RELOAD and self.reloader is not None:
            return await self._reload(update, chat_id, user, self.reloader)
        if command.name is Slash.REMINDERS:
            listed = await self.desk.listing(chat_key(chat_id))
            return await self._reply(update, chat_id, user, lambda locale: self.reminders.listing(listed, locale))
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
        def render(turn: Turn) -> list[dict[str, object]]:
            effects = self._settle_press(query, turn) if query is not None and isinstance(event, Chose) else []
            return [encode(effect) for effect in effects + turn_effects(turn, self.localizer)]

        turn = await self.advisor.handle(
            chat_key(chat_id),
            event,
            update_id=update.update_id,
            render=render,
            locale=self.user_locale(user),
        )
        # Also for a duplicate: a redelivery after a crash finds its reply unsent.
        self._wake(chat_id)
        return Outcome.DUPLICATE if turn is None else Outcome.HANDLED

    async def _reply(self, update: Update | None, chat_id: int, user: User | None, say: Say) -> Outcome:
        """A reply that changes no conversation, through the outbox like every other;
        in the chat's language if it has a conversation, else in the user's."""

        def render(session: Session | None) -> list[dict[str, object]]:
            locale = session.locale if session is not None else self.user_locale(user)
            return [encode(effect) for effect in say(locale)]

        update_id = update.update_id if update is not None else None
        sent = await self.advisor.reply(chat_key(chat_id), render, update_id=update_id)
        self._wake(chat_id)
        return Outcome.HANDLED if sent else Outcome.DUPLICATE

    def _text(self, key: str) -> Say:
        """One of the advisor's own texts, as a message."""
        return lambda locale: [SendText(escape(self.say(key, locale)))]

    def _wake(self, chat_id: int) -> None:
        if self.delivery is not None:
            self.delivery.wake(chat_key(chat_id))

    async def send_turn(self, chat_id: int, turn: Turn) -> None:
        """Send a turn's messages at once, without the outbox (tools and tests that
        replay turns); the channel itself always goes through `Advisor.handle`."""
        for effect in turn_effects(turn, self.localizer):
            await self.sender.perform(chat_id, effect)

    async def _send_stats(self, update: Update, chat_id: int, user: User | None) -> Outcome:
        """The funnel for an operator, as `python -m bot stats` has it: the chart as a photo
        with the summary, then the tables. Counts only: no chat, no text."""
        store = self.advisor.store
        active = (await store.stats()).get("active_conversations", 0)
        report = build_report(await store.events(), self.engine.spec, active=active)

        def say(locale: str) -> list[Effect]:
            caption = f"{self.say('stats_title', locale)}\n{render_summary(report, self.localizer, locale)}"
            tables = render_sections(report, self.localizer, locale)[1:]  # [0] is the summary
            messages = pack_messages([f"<pre>{escape(table)}</pre>" for table in tables])
            chart = chart_of(report, self.localizer, locale)
            return [SendReport(chart, escape(caption)), *(SendText(message) for message in messages)]

        return await self._reply(update, chat_id, user, say)

    async def _reload(self, update: Update, chat_id: int, user: User | None, reloader: ContentReloader) -> Outcome:
        """/reload: the dialogs and catalogs loaded again, as on SIGHUP; the operator reads
        how it went (the problems, as many as fit in a message)."""
        reloaded = await reloader.reload()
        return await self._reply(
            update,
            chat_id,
            user,
            lambda locale: [SendText(reloaded.report(self.localizer, locale, MAX_MESSAGE, escape))],
        )

    # --- buttons ------------------------------------------------------------------------

    async def _on_callback(self, update: Update, query: CallbackQuery) -> Outcome:
        message = query.message
        chat = message.chat if message is not None else None
        if chat is None or chat.type != ChatType.PRIVATE:
            where = chat.id if chat is not None else query.from_user.id
            await self._reply(
                update, where, query.from_user, lambda locale: [AnswerPress(query.id, self.say("private_only", locale))]
            )
            return Outcome.IGNORED
        press = parse_press(query.data)
        if press is not None:
            return await self._on_reminder_press(update, query, chat.id, press)
        data = parse_callback(query.data)
        if isinstance(data, ForgetData):
            return await self._on_forget(update, query, chat.id, data.confirmed)
        # A forged or foreign button is just a stale one the engine will not accept.
        event = Chose(data.version, data.index) if isinstance(data, ChoiceData) else Chose(-1, -1)
        return await self._converse(update, chat.id, query.from_user, event, query)

    async def _on_reminder_press(
        self, update: Update, query: CallbackQuery, chat_id: int, press: ReminderPress
    ) -> Outcome:
        """A reminder's "Paid, thanks" or a "Cancel N" on /reminders: the change and its
        reply committed together, with the update id."""

        def render(reply: Msg, session: Session | None) -> list[dict[str, object]]:
            locale = session.locale if session is not None else self.user_locale(query.from_user)
            return [encode(effect) for effect in self.reminders.pressed(query, reply, locale)]

        key = chat_key(chat_id)
        if isinstance(press, PaidPress):
            done = await self.desk.paid(key, press.reminder_id, press.due, render, update.update_id)
        else:
            done = await self.desk.cancel(key, press.reminder_id, press.number, render, update.update_id)
        self._wake(chat_id)
        return Outcome.HANDLED if done else Outcome.DUPLICATE

    def _settle_press(self, query: CallbackQuery, turn: Turn) -> list[Effect]:
        """Answer the button press; mark the question answered, or explain it moved on."""
        message = query.message if isinstance(query.message, Message) else None
        if turn.stale:
            effects: list[Effect] = [AnswerPress(query.id, self.say("stale_button", turn.session.locale))]
            if message is not None and message.reply_markup is not None:
                # Take the dead buttons away so they are not pressed again.
                effects.append(RemoveButtons(message.message_id))
            return effects
        effects = [AnswerPress(query.id)]
        if message is None or message.text is None:
            return effects
        label = button_label(message.reply_markup, query.data)
        text = answered_html(message.text_html, label) if label else message.text_html
        if len(text) <= MAX_MESSAGE:
            effects.append(EditText(message.message_id, text))
        else:
            effects.append(RemoveButtons(message.message_id))
        return effects

    # --- /forget --------------------------------------------------------------------------

    def _forget_question(self, locale: str) -> list[Effect]:
        buttons = ((self.say("forget_button", locale), FORGET_YES), (self.say("cancel_button", locale), FORGET_NO))
        return [SendText(escape(self.say("forget_confirm", locale)), buttons)]

    async def _on_forget(self, update: Update, query: CallbackQuery, chat_id: int, confirmed: bool) -> Outcome:
        message_id = query.message.message_id if isinstance(query.message, Message) else None
        if not confirmed:

            def cancelled(locale: str) -> list[Effect]:
                return [AnswerPress(query.id), ReplaceText(message_id, escape(self.say("forget_cancelled", locale)))]

            return await self._reply(update, chat_id, query.from_user, cancelled)
        # Read the language before erasing: afterwards there is nothing left to read.
        session = await self.advisor.store.load(chat_key(chat_id))
        locale = session.locale if session is not None else self.user_locale(query.from_user)
        if not await self.advisor.forget(chat_key(chat_id), update_id=update.update_id):
            return Outcome.DUPLICATE
        # Sent directly: an outbox row would name the chat the erase just removed. A
        # passing failure propagates (503): the redelivery erases nothing and says it again.
        with contextlib.suppress(TelegramError):
            await self.sender.perform(chat_id, AnswerPress(query.id))  # cosmetic
        try:
            await self.sender.perform(chat_id, ReplaceText(message_id, escape(self.say("forget_done", locale))))
        except Forbidden:
            log.info("a user blocked the bot; the erase was not confirmed to them")
        log.info("chat erased on request (update %s)", update.update_id)
        return Outcome.HANDLED

    # --- groups, floods, errors ---------------------------------------------------------

    async def _private_only(self, update: Update, chat_id: int, user: User | None) -> Outcome:
        if chat_id in self._told_groups:
            self._told_groups.move_to_end(chat_id)
            return Outcome.IGNORED
        # The group's language is unknown: the language of whoever wrote or added the bot.
        locale = self.user_locale(user)
        outcome = await self._reply(update, chat_id, user, lambda _: self._text("private_only")(locale))
        self._told_groups[chat_id] = None
        while len(self._told_groups) > GROUP_MEMORY:
            self._told_groups.popitem(last=False)
        return outcome

    async def one_moment(self, update: Update) -> None:
        """The single polite notice a flooding chat gets (see `ChatOrderedProcessor`).
        Without the update id: the update itself is refused and will come again."""
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return
        await self._reply(None, chat.id, update.effective_user, self._text("one_moment"))

    async def _apologise(self, update: Update) -> None:
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return
        query = update.callback_query

        def sorry(locale: str) -> list[Effect]:
            effects: list[Effect] = [AnswerPress(query.id)] if query is not None else []
            return [*effects, SendText(escape(self.say("error", locale)))]

        try:
            # With the update id: if the failed update had committed after all, no apology.
            await self._reply(update, chat.id, update.effective_user, sorry)
        except Exception:
            log.warning("could not send the error notice either", exc_info=True)
