"""Conversations made durable: the engine applied under the store's per-chat lock.

Every channel goes through `Advisor.handle`, so the terminal and Telegram behave the
same: load the session, apply the event, deliver the turn, then commit the new
session together with the update id. A crash before the commit loses nothing: the
update is delivered again and applied then; a repeated update id is applied once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.engine.engine import Engine
from bot.engine.events import Chose, Event, Start
from bot.engine.session import Session
from bot.engine.turn import Turn
from bot.i18n.catalog import Localizer
from bot.store.base import Store

log = logging.getLogger(__name__)

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
        if turn.finished and turn.changed:
            await self._count_plan(chat_key, turn)
        return turn

    def _apply(self, session: Session | None, damaged: bool, event: Event, locale: str | None) -> Turn:
        default_locale = self.engine.locales[0]
        if damaged:
            # A row the current code cannot read: restart the user and tell them why.
            broken = Session(flow="", state="", locale=locale or default_locale)
            return self.engine.handle(broken, event)
        if session is None:
            start_locale = event.locale if isinstance(event, Start) and event.locale else locale
            fresh = self.engine.new_session(start_locale or default_locale)
            # Whatever a newcomer sends first, they get the greeting and the first question;
            # a button from a conversation that no longer exists is not an answer.
            turn = self.engine.handle(fresh, Start(fresh.locale))
            turn.stale = isinstance(event, Chose)
            return turn
        return self.engine.handle(session, event)

    async def resume(self, chat_key: str) -> Turn | None:
        """The chat's current question, without changing anything (None: no conversation)."""
        session = await self.store.load(chat_key)
        return self.engine.resume(session) if session else None

    async def forget(self, chat_key: str, *, update_id: int | None = None) -> bool:
        """Erase everything about the chat (`/forget`); False when the update was seen before."""
        async with self.store.conversation(chat_key, update_id) as conv:
            if conv.duplicate:
                return False
            conv.erase()
        log.info("a user's data was erased")
        return True

    async def _count_plan(self, chat_key: str, turn: Turn) -> None:
        top = self.engine.assess(turn.session.slots)
        data = {"flow": turn.session.flow, "top_cause": top[0].cause.id if top else None}
        try:
            await self.store.record_event("plan_shown", chat_key, data)
        except Exception:  # statistics must never cost the user a reply
            log.warning("could not record a statistics event", exc_info=True)
