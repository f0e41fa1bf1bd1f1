"""What the SQLite and PostgreSQL stores share: per-chat locks, the event hash,
session (de)serialisation and UTC time.

Nothing here touches a database.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.engine.session import Session

log = logging.getLogger("bot.store")

#: Name of the row in `store_secrets` holding the generated hash key when none is
#: configured (EVENT_HASH_KEY, read by bot/config.py).
HASH_KEY_SECRET_NAME = "event_hash_key"  # noqa: S105 (a row name, not a secret)

#: Telegram re-delivers an unacknowledged update for about a day; a week of processed
#: update ids is plenty to recognise duplicates while keeping the table small.
PROCESSED_RETENTION = timedelta(days=7)

#: How often (at most) a store deletes processed update ids older than the retention.
PRUNE_INTERVAL = timedelta(hours=1)

#: Seconds after its last `Store.beat` that a sender counts as dead, and its claims on
#: outbox messages as free for another sender: three missed beats of a sender beating
#: every 5 s, so a crashed process's chats move on within ~15 s, not at lease end.
OWNER_TIMEOUT = 15.0

Clock = Callable[[], datetime]


class PruneSchedule:
    """When to delete old processed update ids: at most once every `PRUNE_INTERVAL`."""

    def __init__(self) -> None:
        self._next: datetime | None = None

    def cutoff(self, now: datetime) -> datetime | None:
        """The time before which ids may go, or None when the last pruning is recent."""
        if self._next is not None and now < self._next:
            return None
        self._next = now + PRUNE_INTERVAL
        return now - PROCESSED_RETENTION

    def now_due(self) -> None:
        """Prune at the next chance (after a purge, say)."""
        self._next = None


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def chat_hash(hash_key: bytes | None, chat_key: str) -> str:
    """HMAC-SHA256 of `chat_key` under `hash_key`, as 64 hex digits.

    Events keep only this, so counting them needs no chat key, and without the key the
    hash cannot be reversed by trying every plausible chat id. The key is known once the
    store is open.
    """
    if hash_key is None:
        raise RuntimeError("the store is not open: await store.open() first")
    return hmac.new(hash_key, chat_key.encode("utf-8"), hashlib.sha256).hexdigest()


def lock_id(namespace: str, name: str) -> int:
    """A signed 64-bit number for `name` (a chat key), for PostgreSQL advisory locks.

    64 bits (rather than `hashtext`'s 32) make two chats sharing a lock practically
    impossible, and the value does not depend on a server-internal hash function.
    """
    digest = hashlib.blake2b(f"{namespace}\0{name}".encode(), digest_size=8, person=b"overdue-lock").digest()
    return int.from_bytes(digest, "big", signed=True)


def dump_json(value: Any) -> str:
    """Compact JSON that keeps Chinese text readable in the database."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class SessionRow:
    """The columns a saved session is stored in."""

    data: dict[str, Any]
    flow: str
    state: str
    locale: str
    version: int


def session_row(session: Session) -> SessionRow:
    """Split `session` into its JSON document and the columns copied out of it."""
    return SessionRow(
        data=session.to_dict(),
        flow=session.flow,
        state=session.state,
        locale=session.locale,
        version=session.version,
    )


def read_session(raw: object) -> tuple[Session | None, bool]:
    """Turn a stored value (JSON text or already-parsed JSON) back into a Session.

    Returns `(session, damaged)`. A value that is not JSON, not an object, or that
    `Session.from_dict` rejects is damaged: `(None, True)`. Only the kind of error is
    logged, never the content.
    """
    try:
        data = json.loads(raw) if isinstance(raw, str | bytes | bytearray) else raw
        if not isinstance(data, dict):
            raise TypeError(f"a session is a JSON object, not {type(data).__name__}")
        return Session.from_dict(data), False
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("a stored session could not be read (%s); the chat starts over", type(exc).__name__)
        return None, True


@dataclass
class _Entry:
    lock: asyncio.Lock
    users: int = 0


class KeyedLocks:
    """One `asyncio.Lock` per key, created on demand and dropped when nobody holds or
    waits for it, so a bot that has seen a million chats keeps only the busy ones.

    Meant for one event loop (the bot runs one).
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """How many keys are held or waited on right now."""
        return len(self._entries)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock for `key` for the duration of the block."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(asyncio.Lock())
        # Counted before waiting, so a waiter keeps the entry alive too; the finally
        # runs on cancellation while waiting as well.
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]
