"""The outbox's sender: committed effects carried out per chat, in order, after the commit.

An update's replies are committed with its new session (`Advisor.handle` puts them in
the chat's outbox); the webhook answers Telegram once that commit is done, and only
then does a `Delivery` send them. One `Delivery` per process:

* `wake(chat_key)` starts (or nudges) the chat's task, which claims the chat's unsent
  messages from the store (`claim_outbox`, with a lease under this process's random
  owner id, so one sender at a time works on a chat across replicas), carries them out
  in order and removes each with `mark_sent` right after Telegram accepted it. No
  database connection or transaction is held while Telegram is talking.
* A passing failure (network, timeout, Telegram's 5xx) defers the chat
  (`defer_outbox`, exponential backoff by the message's attempts, capped) and ends
  the task; a 429 defers that chat only, until its `retry_after`, and every other chat
  goes on (see `ratelimit`).
* Telegram refusing a message (BadRequest): logged without its text and dropped. The
  user blocked the bot (Forbidden): all of that chat's messages are dropped and
  `on_blocked(chat_key)` is called (so reminders can be switched off).
* Cosmetic effects ("typing…", answering a press, edits) never hold a chat up: any
  failure drops them and the next message goes.
* A message that cannot be marked sent (the database is down) is marked again, with
  backoff, before anything else of its chat is sent; it is never sent again by us.
* A message still failing after `max_attempts` (about a day at the capped backoff) is
  given up (logged).
* `start()` says this process is alive (`Store.beat`, again every `beat_every`
  seconds: a claim counts only while its owner beats, so a dead process's chats are
  taken over within the store's `owner_timeout`, about 15 s) and runs a sweep every
  `sweep_every` seconds that wakes the chats with messages nobody is sending
  (`pending_chats`): at start-up all of them, later those committed more than
  `stale_after` ago, or whose lease, deferral or owner ran out. That finishes the work
  of a process that died after a commit. `stop()` gives sends in flight a grace
  period, then hands back this process's claims (`release_outbox`).
* `backlog(chat_key)` says roughly how many of a chat's committed updates still have
  replies to send here; the per-chat processor refuses a flooding chat beyond a few.

The duplicate window, by name: a message is sent a second time only if the process
died (or was stopped past the grace period, or the send timed out after
`sender.SEND_TIMEOUTS`) after Telegram had accepted it and before `mark_sent`
committed. Everything else is sent exactly once: a failed commit sends nothing, and a
redelivered update is a duplicate the store refuses.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot.channels.telegram.effects import Effect, chat_id_of, decode, is_cosmetic
from bot.channels.telegram.ratelimit import retry_after_seconds
from bot.outage import Outage
from bot.store.base import OutboxMessage, Store

log = logging.getLogger(__name__)

Perform = Callable[[int, Effect], Awaitable[None]]
OnBlocked = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class DeliveryPolicy:
    """How patiently the outbox is delivered."""

    # How long a claim keeps other senders off a chat, while its owner is alive (the
    # store also lets a claim go once its owner stopped beating: `beat_every`). Claims
    # are renewed (claimed again) before a message when `renew_after` has passed, so
    # every send starts with most of a lease ahead, longer than any send can take.
    lease: timedelta = timedelta(minutes=5)
    renew_after: timedelta = timedelta(seconds=60)
    # How often this process tells the store it is alive (its claims stay its own).
    beat_every: float = 5.0
    batch: int = 10
    # Backoff after a passing failure: first_backoff · 2^attempts, at most max_backoff.
    first_backoff: float = 1.0
    max_backoff: float = 600.0
    # About a day of tries at the capped backoff, then the message is given up.
    max_attempts: int = 150
    # Marking a message sent is retried this often at most (seconds between tries).
    max_mark_backoff: float = 30.0
    sweep_every: float = 1.0
    # Committed but unclaimed this long: its request's own wake did not happen (a crash).
    stale_after: timedelta = timedelta(seconds=5)
    # Bot API calls in flight at once (the channel sets it to its HTTP pool size, so none
    # waits for a connection).
    max_sending: int = 16

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed delivery of a message (0-based)."""
        return min(self.max_backoff, self.first_backoff * 2.0 ** min(attempts, 32))


@dataclass
class DeliveryCounts:
    """What became of the outbox's messages in this process (for metrics and tests)."""

    sent: int = 0
    deferred: int = 0
    dropped: int = 0
    blocked_chats: int = 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Delivery:
    """Sends committed outboxes, one task per chat (see the module docstring)."""

    store: Store
    perform: Perform
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    # Called once the chat's messages were dropped because the user blocked the bot.
    on_blocked: OnBlocked | None = None
    clock: Callable[[], datetime] = _utc_now
    # Random per process: the store's claims tell this process's leases from others'.
    owner: str = field(default_factory=lambda: secrets.token_hex(8))
    counts: DeliveryCounts = field(default_factory=DeliveryCounts)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False, repr=False)
    _again: set[str] = field(default_factory=set, init=False, repr=False)
    _sweeper: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)
    _sending: asyncio.Semaphore | None = field(default=None, init=False, repr=False)
    # Per chat: wakes (committed updates, roughly) since its outbox was last seen empty.
    _unsent: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    # Sent messages waiting for the next shared commit that marks them, and its task.
    _marks: dict[int, asyncio.Future[None]] = field(default_factory=dict, init=False, repr=False)
    _marker: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Say this process is alive, and begin sweeping: everything pending now, then
        every `sweep_every` seconds."""
        self._closed = False
        await self._beat()
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(), name="outbox-sweep")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop sweeping; let sends in flight finish for up to `grace` seconds, then
        cancel them (what was accepted but not marked is the named duplicate window)."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        running = list(self._tasks.values())
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._marker is not None and not self._marker.done():
            # What Telegram accepted is marked if the store lets us, within the grace.
            await asyncio.wait({self._marker}, timeout=grace)
        # Hand back what this process still holds, for the next sender to take at once.
        try:
            await self.store.release_outbox(self.owner)
        except Exception as error:
            log.warning("could not release this sender's claims (%s)", type(error).__name__)

    def wake(self, chat_key: str) -> None:
        """Deliver the chat's outbox soon: start its task, or have the running one look again."""
        if self._closed:
            return  # the next start's sweep sends it
        self._unsent[chat_key] = self._unsent.get(chat_key, 0) + 1
        if chat_key in self._tasks:
            self._again.add(chat_key)
            return
        task = asyncio.get_running_loop().create_task(self._run(chat_key), name="outbox-chat")
        self._tasks[chat_key] = task
        task.add_done_callback(_report_crash)

    def backlog(self, chat_key: str) -> int:
        """About how many committed updates of the chat still have replies to send here
        (the per-chat processor refuses a flooding chat's updates beyond a few)."""
        return self._unsent.get(chat_key, 0)

    async def idle(self) -> None:
        """Wait until no chat is being delivered (for tests and orderly stops)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    async def sweep(self, older_than: timedelta) -> int:
        """Wake every chat with messages nobody is sending; how many there were."""
        chats = await self.store.pending_chats(self.clock(), older_than)
        for chat in chats:
            self.wake(chat)
        return len(chats)

    async def _beat(self) -> None:
        try:
            await self.store.beat(self.owner)
        except Exception as error:
            log.warning("could not record that this sender is alive (%s)", type(error).__name__)

    async def _sweep_forever(self) -> None:
        older_than = timedelta(0)  # at start-up: whatever a previous process left
        outage = Outage("outbox sweep", log)
        beaten = time.monotonic()
        while True:
            if time.monotonic() - beaten >= self.policy.beat_every:
                beaten = time.monotonic()
                await self._beat()
            try:
                await self.sweep(older_than)
            except Exception as error:
                outage.failed(error)
            else:
                outage.worked()
                older_than = self.policy.stale_after
            await asyncio.sleep(self.policy.sweep_every)

    # --- one chat ----------------------------------------------------------------------

    async def _run(self, chat_key: str) -> None:
        try:
            while not self._closed:
                self._again.discard(chat_key)
                try:
                    batch = await self.store.claim_outbox(chat_key, self.owner, self.policy.lease, self.policy.batch)
                except Exception as error:
                    log.warning("could not claim an outbox (%s); the sweep will try again", type(error).__name__)
                    return
                if not batch:
                    if chat_key in self._again:
                        continue  # committed while we were claiming: look once more
                    self._unsent.pop(chat_key, None)
                    return  # empty, deferred, or another replica is sending it
                renew_at = time.monotonic() + self.policy.renew_after.total_seconds()
                for message in batch:
                    if time.monotonic() > renew_at:
                        break  # claim again: renews the lease on what is left
                    if not await self._deliver(chat_key, message):
                        return
                else:
                    if len(batch) < self.policy.batch and chat_key not in self._again:
                        # All there was, and nothing committed here since: skip the
                        # claim that would find it empty (a third of the store's work for
                        # a one-message turn). What another replica commits for this
                        # chat meanwhile, the sweep finds `stale_after` later.
                        self._unsent.pop(chat_key, None)
                        return
        finally:
            # No await between the last look at `_again` and here, so a wake either
            # found this task running (and was seen) or comes after and starts a new one.
            if self._tasks.get(chat_key) is asyncio.current_task():
                del self._tasks[chat_key]

    async def _deliver(self, chat_key: str, message: OutboxMessage) -> bool:
        """Carry out one message; False when the chat must stop for now."""
        try:
            effect = decode(message.payload)
            chat_id = chat_id_of(chat_key)
        except ValueError as error:
            log.warning("outbox message %s dropped: %s", message.id, error)
            return await self._drop(message)
        if message.attempts >= self.policy.max_attempts:
            log.warning("outbox message %s given up after %d attempts", message.id, message.attempts)
            return await self._drop(message)
        if self._sending is None:
            self._sending = asyncio.Semaphore(self.policy.max_sending)
        try:
            async with self._sending:
                await self.perform(chat_id, effect)
        except Exception as error:
            return await self._failed(chat_key, message, effect, error)
        await self._mark(message.id)
        self.counts.sent += 1
        return True

    async def _failed(self, chat_key: str, message: OutboxMessage, effect: Effect, error: Exception) -> bool:
        # Only types and ids are logged: Telegram's descriptions may quote the text.
        kind = type(error).__name__
        if is_cosmetic(effect):
            log.debug("cosmetic outbox message %s dropped (%s)", message.id, kind)
            return await self._drop(message)
        if isinstance(error, RetryAfter):
            await self._defer(chat_key, retry_after_seconds(error))
            return False
        if isinstance(error, Forbidden):
            await self._blocked(chat_key)
            return False
        if isinstance(error, (BadRequest, ChatMigrated)):
            log.warning("Telegram refused outbox message %s (%s); dropped", message.id, kind)
            log.debug("the refusal: %s", error)
            return await self._drop(message)
        if isinstance(error, (TelegramError, OSError)):
            delay = self.policy.backoff(message.attempts)
            log.info("outbox message %s not sent (%s); the chat tries again in %.0f s", message.id, kind, delay)
            await self._defer(chat_key, delay)
            return False
        # Our own bug (a chart that cannot be drawn...): sending again would fail again.
        log.error("outbox message %s could not be carried out; dropped", message.id, exc_info=error)
        return await self._drop(message)

    async def _drop(self, message: OutboxMessage) -> bool:
        await self._mark(message.id)
        self.counts.dropped += 1
        return True

    async def _defer(self, chat_key: str, seconds: float) -> None:
        self.counts.deferred += 1
        try:
            await self.store.defer_outbox(chat_key, self.clock() + timedelta(seconds=seconds))
        except Exception as error:
            # The lease still keeps others off; when it runs out, the sweep takes it up.
            log.warning("could not defer an outbox (%s)", type(error).__name__)

    async def _blocked(self, chat_key: str) -> None:
        """The user blocked the bot: nothing will reach them, so nothing is kept to send."""
        log.info("a user blocked the bot; their unsent messages are dropped")
        self.counts.blocked_chats += 1
        self._unsent.pop(chat_key, None)
        try:
            while batch := await self.store.claim_outbox(chat_key, self.owner, self.policy.lease, 100):
                for message in batch:
                    await self._drop(message)
        except Exception as error:
            log.warning("could not drop a blocked chat's outbox (%s)", type(error).__name__)
        if self.on_blocked is not None:
            try:
                await self.on_blocked(chat_key)
            except Exception:
                log.warning("the blocked-chat hook failed", exc_info=True)

    async def _mark(self, message_id: int) -> None:
        """Remove a sent (or dropped) message before anything else of its chat is sent
        (sending first could reorder or repeat it). Marks of all chats waiting at the
        same moment share one commit (a group commit: under load one transaction marks
        many chats' messages, instead of one transaction and thread hop per message)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._marks[message_id] = done
        if self._marker is None or self._marker.done():
            self._marker = asyncio.get_running_loop().create_task(self._mark_waiting(), name="outbox-marks")
        await done

    async def _mark_waiting(self) -> None:
        """Commit the waiting marks, all at once, until none is left; retried until it
        works (a message is never sent again by us)."""
        while self._marks:
            waiting, self._marks = self._marks, {}
            delay = 0.5
            while True:
                try:
                    await self.store.mark_sent(*waiting)
                    break
                except Exception as error:
                    log.warning(
                        "could not mark %d outbox message(s) sent (%s); again in %.1f s",
                        len(waiting),
                        type(error).__name__,
                        delay,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.policy.max_mark_backoff)
            for done in waiting.values():
                if not done.done():
                    done.set_result(None)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("an outbox task crashed", exc_info=task.exception())
