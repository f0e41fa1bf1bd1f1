"""Per-chat ordering with a bounded backlog: one chat in order, different chats in parallel.

PTB's own concurrency either serialises everything (one slow chat delays every other
user) or nothing (two messages of one chat race each other). This processor gives
each chat a lock, so its updates run one after the other in arrival order, while other
chats proceed concurrently. A chat that floods the bot gets at most `max_backlog`
updates queued or with replies still to send (`backlog`: the outbox's count, since an
update's replies are sent after it is handled); the rest are dropped (`Outcome.BUSY`),
and the first dropped one triggers `on_overflow` (one polite "one moment"), so the
flooder neither slows others nor gets a reply storm.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.channels.telegram.outcome import Outcome

log = logging.getLogger(__name__)

OverflowHandler = Callable[[Update], Awaitable[None]]
# Chat id -> how many of its handled updates still have replies waiting to be sent.
Backlog = Callable[[int], int]
# Flooders remembered as warned (until they are served again), at most.
WARNED_MEMORY = 10_000
T = TypeVar("T")


@dataclass
class _ChatSlot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: int = 0  # running + waiting


def chat_of(update: object) -> int | None:
    """The id updates are serialised on: the chat, else the user, else none."""
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return None


class ChatOrderedProcessor(BaseUpdateProcessor):
    """A `BaseUpdateProcessor` keyed by chat id with a bounded per-chat backlog.

    Used for polling (PTB's update fetcher calls `process_update`) and for the webhook
    (the request handler calls `run` and gets the update's outcome back), so both modes
    order updates the same way.
    """

    def __init__(
        self,
        max_concurrent_updates: int = 4096,
        max_backlog: int = 5,
        on_overflow: OverflowHandler | None = None,
        backlog: Backlog | None = None,
    ) -> None:
        super().__init__(max_concurrent_updates)
        if max_backlog < 1:
            raise ValueError("max_backlog must be at least 1")
        self.max_backlog = max_backlog
        self.on_overflow = on_overflow
        self.backlog = backlog
        self._chats: dict[int, _ChatSlot] = {}
        # Chats told "one moment" in their current flood (until they are caught up).
        self._warned: set[int] = set()

    @property
    def busy_chats(self) -> int:
        """Chats with an update running or waiting (for metrics)."""
        return len(self._chats)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """PTB's entry point: `run`, without the outcome."""
        await self.run(update, coroutine)

    async def run(self, update: object, coroutine: Awaitable[T]) -> T | Outcome:
        """`coroutine`'s result, run under its chat's lock; `Outcome.BUSY` without running
        it when the chat's backlog is full."""
        chat = chat_of(update)
        if chat is None:
            return await coroutine
        # Everything up to the lock runs without awaiting, so the slot is taken in the
        # order updates arrive, and the lock (FIFO) keeps that order.
        slot = self._chats.get(chat)
        if slot is None:
            slot = self._chats[chat] = _ChatSlot()
        waiting = slot.pending + (self.backlog(chat) if self.backlog is not None else 0)
        if waiting >= self.max_backlog:
            _discard(coroutine)
            assert isinstance(update, Update)
            log.info("chat backlog full, update %s dropped", update.update_id)
            if chat not in self._warned:
                if len(self._warned) >= WARNED_MEMORY:
                    self._warned.clear()
                self._warned.add(chat)
                await self._overflow(update)
            return Outcome.BUSY
        if waiting == 0:
            self._warned.discard(chat)  # caught up: a new flood is told again
        slot.pending += 1
        try:
            async with slot.lock:
                return await coroutine
        finally:
            slot.pending -= 1
            if slot.pending == 0 and self._chats.get(chat) is slot:
                del self._chats[chat]

    async def _overflow(self, update: Update) -> None:
        if self.on_overflow is None:
            return
        try:
            await self.on_overflow(update)
        except Exception:
            # A failed "one moment" must not fail anything else.
            log.warning("could not send the 'one moment' notice", exc_info=True)

    async def initialize(self) -> None:
        """Nothing to allocate: chat slots are created on demand and freed when idle."""

    async def shutdown(self) -> None:
        """Nothing to free: running updates finish under their callers."""


def _discard(coroutine: Awaitable[Any]) -> None:
    # A dropped update's coroutine was created but will never run: close it so Python
    # does not warn "coroutine was never awaited".
    if inspect.iscoroutine(coroutine):
        coroutine.close()
