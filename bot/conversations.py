"""Conversations made durable: the engine applied under the store's per-chat lock.

Every channel goes through `Advisor.handle`, so the terminal and Telegram behave the
same: load the session, apply the event, and commit in one transaction the new session,
the update id, what to send (the channel's `render` of the turn, into the chat's
outbox) and the anonymous statistics. Nothing is sent before that commit: a failed
commit sends nothing and the update is delivered again; a repeated update id is applied
once. The channel sends the outbox after the commit (Telegram: `channels.telegram.
delivery`); the terminal has no outbox and prints the returned turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from bot.engine.engine import Engine
from bot.engine.events import Chose, Command, CommandName, Event, Start
from bot.engine.session import Session
from bot.engine.turn import Turn
from bot.i18n.catalog import Localizer
from bot.reminders.clock import Clock, system_clock
from bot.reminders.planning import Planner
from bot.stats.funnel import funnel_events
from bot.store.base import Store, StoreUnavailable

log = logging.getLogger(__name__)

# /healthz asks whether the store can commit at most this often (seconds), and gives the
# probe this long before calling the store unavailable.
PROBE_EVERY = 2.0
PROBE_TIMEOUT = 3.0

# A turn as the channel's outbox payloads (JSON objects), in the order they are sent.
Render = Callable[[Turn], list[dict[str, Any]]]
# A reply that changes no conversation, from the chat's session (None: there is none).
Reply = Callable[[Session | None], list[dict[str, Any]]]


def _nothing(turn: Turn) -> list[dict[str, Any]]:
    return []


class Advisor:
    """The engine, the store and the translations, for channels to drive."""

    def __init__(self, engine: Engine, store: Store, localizer: Localizer, clock: Clock = system_clock) -> None:
        self.engine = engine
        self.store = store
        self.localizer = localizer
        # The wall clock reminders are planned by (a test's shifted one: CLOCK_OFFSET_FILE).
        self.clock = clock
        self._probed_at = -PROBE_EVERY  # the first question probes
        self._can_commit = True
        self._probe: asyncio.Future[None] | None = None

    async def handle(
        self,
        chat_key: str,
        event: Event,
        *,
        update_id: int | None = None,
        render: Render = _nothing,
        locale: str | None = None,
    ) -> Turn | None:
        """Apply `event` to the chat's conversation and commit, with the session and the
        update id, `render(turn)` into the chat's outbox; the turn once committed, None
        when `update_id` was seen before.

        `locale` is the user's language, used when the chat has no conversation yet.
        """
        async with self._committing(), self.store.conversation(chat_key, update_id) as conv:
            if conv.duplicate:
                log.info("duplicate update ignored")
                return None
            turn = self._apply(conv.session, conv.damaged, event, locale)
            # The turn's actions (a reminder set, a check-in promised or answered), committed
            # with it; the turn gains the line saying when the first one comes.
            turn, changes = Planner(self.engine).plan(turn, self.clock())
            for change in changes:
                conv.remind(change)
            if turn.changed or conv.session is None:
                conv.save(turn.session)
            for payload in render(turn):
                conv.send(payload)
            # Anonymous statistics (`python -m bot stats`): nothing the user said.
            for count in funnel_events(self.engine, event, turn, conv.session):
                conv.count(count.name, count.data)
        return turn

    async def reply(self, chat_key: str, render: Reply, *, update_id: int | None = None) -> bool:
        """Commit `render(session)` into the chat's outbox without touching the
        conversation (an unknown command, a confirmation question); False when
        `update_id` was seen before. With the update id it too is sent exactly once."""
        async with self._committing(), self.store.conversation(chat_key, update_id) as conv:
            if conv.duplicate:
                return False
            for payload in render(None if conv.damaged else conv.session):
                conv.send(payload)
        return True

    def _apply(self, session: Session | None, damaged: bool, event: Event, locale: str | None) -> Turn:
        default_locale = self.engine.locales[0]
        if damaged:
            # A row the current code cannot read: restart the user and tell them why.
            return self.engine.restart(locale or default_locale, version=1)
        if session is None:
            start_locale = event.locale if isinstance(event, Start) and event.locale else locale
            fresh = self.engine.new_session(start_locale or default_locale)
            if isinstance(event, Command) and event.name is CommandName.REMIND:
                return self.engine.handle(fresh, event)  # a reminder needs no advice first
            # Whatever else a newcomer sends first, they get the greeting and the first
            # question; a button from a conversation that no longer exists is not an answer.
            turn = self.engine.handle(fresh, Start(fresh.locale))
            return replace(turn, stale=isinstance(event, Chose))
        return self.engine.handle(session, event)

    async def forget(self, chat_key: str, *, update_id: int | None = None) -> bool:
        """Erase everything about the chat (`/forget`), its unsent outbox included;
        False when the update was seen before."""
        async with self.store.conversation(chat_key, update_id) as conv:
            if conv.duplicate:
                return False
            conv.erase()
        log.info("a user's data was erased")
        return True

    @asynccontextmanager
    async def _committing(self) -> AsyncIterator[None]:
        """A commit that fails tells /healthz at once, without waiting for its next probe."""
        try:
            yield
        except StoreUnavailable:
            self._can_commit, self._probed_at = False, time.monotonic()
            raise

    async def can_commit(self) -> bool:
        """Whether the store can commit (for /healthz): a tiny write, at most every
        `PROBE_EVERY` seconds (the answer is kept in between), within `PROBE_TIMEOUT`.
        A probe still stuck from before counts as a failure, and no second one starts
        beside it (stuck probes would pile up in the store's connections)."""
        now = time.monotonic()
        if now - self._probed_at < PROBE_EVERY:
            return self._can_commit
        if self._probe is not None and not self._probe.done():
            return False
        self._probed_at = now
        self._probe = probe = asyncio.ensure_future(self.store.probe_write())
        probe.add_done_callback(_collect)
        try:
            await asyncio.wait_for(asyncio.shield(probe), timeout=PROBE_TIMEOUT)
            can_commit = True
        except Exception as error:
            if self._can_commit:
                log.warning("the store cannot commit (%s)", type(error).__name__)
            can_commit = False
        self._can_commit = can_commit
        return can_commit


def _collect(probe: asyncio.Future[None]) -> None:
    # A probe that outlived its timeout ends unobserved: fetch its outcome so asyncio
    # does not report "exception was never retrieved".
    if not probe.cancelled():
        probe.exception()
