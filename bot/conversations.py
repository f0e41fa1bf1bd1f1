"""Conversations made durable: the engine applied under the store's per-chat lock.

Every channel goes through `Advisor.handle`, so the terminal and Telegram behave the
same: load the session, apply the event, deliver the turn, then commit the new
session together with the update id. A crash before the commit loses nothing: the
update is delivered again and applied then; a repeated update id is applied once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from bot.engine.engine import Engine
from bot.engine.events import Chose, Event, Start
from bot.engine.session import Session
from bot.engine.turn import Turn
from bot.i18n.catalog import Localizer
from bot.store.base import Store

log = logging.getLogger(__name__)

# The `milestone:` of the dialog state that shows the plan (statistics: plans shown).
PLAN_MILESTONE = "plan"

Deliver = Callable[[Turn], Awaitable[None]]


async def _ignore(turn: Turn) -> None:
    return None


class Advisor:
    """The engine, the store and the translations, for channels to drive."""

    def __init__(self, engine: Engine, store: Store, localizer: Localizer) -> None:
        self.engine = engine
        self.store = store
        self.localizer = localizer

    async def handle(
        self,
        chat_key: str,
        event: Event,
        *,
        update_id: int | None = None,
        deliver: Deliver = _ignore,
        locale: str | None = None,
    ) -> Turn | None:
        """Apply `event` to the chat's conversation; None when `update_id` was seen before.

        `locale` is the user's language, used when the chat has no conversation yet.
        """
        async with self.store.conversation(chat_key, update_id) as conv:
            if conv.duplicate:
                log.info("duplicate update ignored")
                return None
            turn = self._apply(conv.session, conv.damaged, event, locale)
            await deliver(turn)
            if turn.changed or conv.session is None:
                conv.save(turn.session)
        await self._count(chat_key, event, turn, started=conv.session is None)
        return turn

    def _apply(self, session: Session | None, damaged: bool, event: Event, locale: str | None) -> Turn:
        default_locale = self.engine.locales[0]
        if damaged:
            # A row the current code cannot read: restart the user and tell them why.
            return self.engine.restart(locale or default_locale, version=1)
        if session is None:
            start_locale = event.locale if isinstance(event, Start) and event.locale else locale
            fresh = self.engine.new_session(start_locale or default_locale)
            # Whatever a newcomer sends first, they get the greeting and the first question;
            # a button from a conversation that no longer exists is not an answer.
            turn = self.engine.handle(fresh, Start(fresh.locale))
            return replace(turn, stale=isinstance(event, Chose))
        return self.engine.handle(session, event)

    async def forget(self, chat_key: str, *, update_id: int | None = None) -> bool:
        """Erase everything about the chat (`/forget`); False when the update was seen before."""
        async with self.store.conversation(chat_key, update_id) as conv:
            if conv.duplicate:
                return False
            conv.erase()
        log.info("a user's data was erased")
        return True

    async def _count(self, chat_key: str, event: Event, turn: Turn, *, started: bool) -> None:
        """Anonymous statistics (`python -m bot stats`): conversations started, plans shown
        by flow and top cause. Nothing the user said is recorded."""
        names = []
        if started or isinstance(event, Start):
            names.append("conversation_started")
        if PLAN_MILESTONE in turn.milestones and turn.changed:
            top = self.engine.assess(turn.session.slots)
            names.append(f"plan_shown.{turn.session.flow}.{top[0].cause.id if top else 'none'}")
        for name in names:
            try:
                await self.store.record_event(name, chat_key, {"flow": turn.session.flow})
            except Exception:  # statistics must never cost the user a reply
                log.warning("could not record a statistics event", exc_info=True)
