"""The reminder loop: claims due rows in batches and hands their messages to the outbox.

Every long-running process (webhook, polling) runs one. Each round asks the store to
fire up to `batch` due rows in one transaction (`Store.fire_reminders`: PostgreSQL
claims with SKIP LOCKED, so replicas take disjoint shares; SQLite has one writer), then
wakes the outbox sender for the chats that got messages. The sender sends at Telegram's
pace; the loop only keeps the outbox from filling faster than `rate` messages a second
(a share of TELEGRAM_MAX_RATE), in small batches (a quarter of a second's worth), so
10,000 reminders due at 09:00 go out as a steady stream that leaves room for replies to
people talking to the bot, not as bursts the rate limiter would have to flatten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.outage import Outage
from bot.reminders.clock import Clock, system_clock
from bot.reminders.firing import Firer
from bot.store.base import Fired, Store

log = logging.getLogger(__name__)

# Of the overall rate limit, the share reminders may fill: the rest is for replies.
SHARE_OF_RATE = 0.8
# Rows a claim takes when nothing limits the rate.
UNPACED_BATCH = 100


@dataclass
class ReminderLoop:
    """Fires due reminders until stopped (see the module docstring).

    `wake(chat_key)` tells the outbox sender a chat has messages. `rate` is messages a
    second the loop queues at most (0: as fast as the store allows); `batch` the rows a
    claim takes (default: a quarter of a second's worth at `rate`, else 100); `idle` the
    seconds between looks when nothing is due.
    """

    store: Store
    firer: Firer
    wake: Callable[[str], None]
    clock: Clock = system_clock
    rate: float = 24.0
    batch: int = 0
    idle: float = 1.0
    fired: int = 0
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.batch <= 0:
            self.batch = max(1, math.ceil(self.rate / 4)) if self.rate > 0 else UNPACED_BATCH

    async def tick(self) -> Fired:
        """Fire one batch of due rows now; what was fired."""
        now = self.clock()
        result = await self.store.fire_reminders(now, self.batch, self.firer.at(now))
        self.fired += result.claimed
        for chat in result.chats:
            self.wake(chat)
        if result.claimed:
            log.debug("fired %d reminder(s), messages for %d chat(s)", result.claimed, len(result.chats))
        return result

    async def run_forever(self) -> None:
        """Round after round: a full batch goes on at once (after the pacing pause),
        otherwise the loop looks again after `idle` seconds."""
        outage = Outage("firing reminders", log)
        while True:
            pause = self.idle
            try:
                result = await self.tick()
            except Exception as error:
                outage.failed(error)
            else:
                outage.worked()
                paced = len(result.chats) / self.rate if self.rate > 0 else 0.0
                pause = paced if result.claimed >= self.batch else max(paced, self.idle)
            await asyncio.sleep(pause)

    def start(self) -> None:
        """Run in the background on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run_forever(), name="reminders")

    async def stop(self) -> None:
        """Stop after the round in progress (a claim is one transaction: all or nothing)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def rate_for(max_rate: float) -> float:
    """The loop's pace for an overall rate limit of `max_rate` messages a second (0: none)."""
    return max_rate * SHARE_OF_RATE if max_rate > 0 else 0.0
