"""The Bot API rate limiter: an overall rate, and a 429 pauses only the chat it came for.

PTB's `AIORateLimiter` halts *every* request for `retry_after` when Telegram answers
one of them with 429, and retries inside the request. One chat's flood limit then made
every other chat wait (measured: `retry_after=20` for one chat delayed all others by
19.6 s). Telegram's flood limits are per chat (about one message a second in a chat,
bursts allowed) plus an overall rate (about 30 a second), so:

* requests that name a chat go through one overall limiter of TELEGRAM_MAX_RATE a
  second (0: none), as PTB's does;
* a 429 for a request that names a chat pauses that chat only; a 429 for one that
  names none (answering a button press, the command menu) pauses everything, since
  Telegram did not say what it limits;
* nothing is retried here: the `RetryAfter` propagates, and the outbox's delivery
  defers that chat until `retry_after` while the others go on. A request for a paused
  chat fails at once with `RetryAfter` for the time left, unless that is under
  `WAIT_AT_MOST` (then it waits).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from aiolimiter import AsyncLimiter
from telegram._utils.types import JSONDict
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

# A pause this close to its end is waited out rather than failed.
WAIT_AT_MOST = 1.0
# Paused chats remembered before expired entries are swept.
PAUSE_MEMORY = 1024
# Tries of a start-up call that Telegram answers with 429 (`patiently`).
STARTUP_ATTEMPTS = 5

T = TypeVar("T")


def retry_after_seconds(error: RetryAfter) -> float:
    """`retry_after` in seconds (PTB 22 gives an int or a timedelta, with a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def paused_error(seconds: float) -> RetryAfter:
    """A `RetryAfter` for a pause with `seconds` left (as Telegram would answer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB's constructor reads its deprecated int form
        return RetryAfter(timedelta(seconds=seconds))


class ChatRateLimiter(BaseRateLimiter[None]):
    """Overall rate for chat requests; per-chat pauses on 429; no retries."""

    def __init__(self, overall_max_rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._overall = AsyncLimiter(overall_max_rate, 1) if overall_max_rate > 0 else None
        self._clock = clock
        self._paused: dict[int | str, float] = {}  # chat -> clock time the pause ends
        self._all_paused_until = 0.0

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    def paused_for(self, chat: int | str | None) -> float:
        """Seconds before a request for `chat` (None: no chat) may go out."""
        now = self._clock()
        until = self._all_paused_until
        if chat is not None:
            until = max(until, self._paused.get(chat, 0.0))
        return max(0.0, until - now)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | JSONDict | list[JSONDict]:
        """Wait for the overall rate, refuse (or briefly wait for) a paused chat, call."""
        chat = _chat_of(data)
        wait = self.paused_for(chat)
        if wait > WAIT_AT_MOST:
            raise paused_error(wait)
        if wait > 0:
            await asyncio.sleep(wait)
        limiter = self._overall if chat is not None and self._overall is not None else contextlib.nullcontext()
        async with limiter:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                self._pause(chat, retry_after_seconds(error))
                raise

    def _pause(self, chat: int | str | None, seconds: float) -> None:
        until = self._clock() + seconds
        if chat is None:
            self._all_paused_until = max(self._all_paused_until, until)
            return
        if len(self._paused) >= PAUSE_MEMORY:
            now = self._clock()
            self._paused = {key: end for key, end in self._paused.items() if end > now}
        self._paused[chat] = max(self._paused.get(chat, 0.0), until)


async def patiently(call: Callable[[], Awaitable[T]], attempts: int = STARTUP_ATTEMPTS) -> T:
    """`call()`, waiting out Telegram's 429 and trying again, a few times: for the calls
    a process makes at start (command menu, webhook), which no outbox retries later."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except RetryAfter as error:
            if attempt == attempts:
                raise
            await asyncio.sleep(retry_after_seconds(error) + 0.1)
    raise AssertionError("unreachable")  # pragma: no cover


def _chat_of(data: dict[str, Any]) -> int | str | None:
    chat = data.get("chat_id")
    if chat is None:
        return None
    # PTB passes what the caller gave: an int, or a string ("@channel" or digits).
    with contextlib.suppress(TypeError, ValueError):
        return int(chat)
    return str(chat)
