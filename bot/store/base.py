"""The store interface: what the channels need to keep conversations durable.

Two implementations (SQLite, PostgreSQL) pass one contract test suite. A channel
handles an update like this::

    async with store.conversation(chat_key, update_id) as conv:
        if conv.duplicate:
            return                      # seen before: acknowledge, apply nothing
        turn = engine.handle(conv.session or engine.new_session(...), event)
        await send(turn)                # inside: a crash before commit means re-delivery
        conv.save(turn.session)         # committed, with the update id, on exit

`conversation` serialises everything on one chat key, across tasks and across
replicas (row lock or equivalent); different keys proceed in parallel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from bot.engine.session import Session


class StoreUnavailable(RuntimeError):
    """The database could not be reached or failed mid-operation; nothing was committed."""


class Change(Enum):
    """What a `conversation` block decided to write when it exits."""

    NOTHING = "nothing"  # the session stays as it was (the update id is still recorded)
    SAVE = "save"  # `Conversation.saved` replaces the session
    ERASE = "erase"  # everything about the chat goes (`/forget`)


@dataclass
class Conversation:
    """One chat's session inside a `Store.conversation` block: the channel reads it and
    says what to write (`save`, `erase`); the store reads `change` and `saved` at the end."""

    chat_key: str
    session: Session | None
    # The update id was already applied: do nothing, answer nothing.
    duplicate: bool = False
    # The stored row could not be read back (corrupt or from an older schema).
    damaged: bool = False
    change: Change = field(default=Change.NOTHING, init=False)
    saved: Session | None = field(default=None, init=False)
    # What to send once committed (channel-specific JSON objects, in order) and the
    # anonymous statistics events to count, both committed with the session.
    outbox: list[dict[str, Any]] = field(default_factory=list, init=False)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list, init=False)

    def save(self, session: Session) -> None:
        """Keep `session` when the block exits without an exception."""
        self.change, self.saved = Change.SAVE, session

    def erase(self) -> None:
        """Forget this chat entirely when the block exits (`/forget`); the chat's unsent
        outbox goes too, and nothing else queued in this block is kept."""
        self.change, self.saved = Change.ERASE, None

    def send(self, payload: dict[str, Any]) -> None:
        """Queue `payload` in the chat's outbox; committed with the block, sent after."""
        self.outbox.append(payload)

    def count(self, name: str, data: dict[str, Any]) -> None:
        """Count anonymous event `name` in the block's transaction (the chat only hashed)."""
        self.events.append((name, data))


@dataclass(frozen=True)
class OutboxMessage:
    """One committed, unsent message of a chat's outbox, claimed by a sender."""

    id: int
    chat_key: str
    payload: dict[str, Any]
    # Failed deliveries so far (for backoff, and to give up on one that never goes).
    attempts: int


@dataclass(frozen=True)
class Reminder:
    """A repayment reminder to send to `chat_key` at `due_at` (scheduled by a later issue)."""

    id: int
    chat_key: str
    due_at: datetime
    payload: dict[str, Any]


class Store(ABC):
    """Durable sessions, processed update ids, reminders and anonymous events."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date (idempotent, safe with concurrent replicas)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the database answers (for /healthz)."""

    @abstractmethod
    def conversation(self, chat_key: str, update_id: int | None = None) -> AbstractAsyncContextManager[Conversation]:
        """Lock `chat_key`, load its session and, on a clean exit, commit what was saved
        together with `update_id` as processed."""

    @abstractmethod
    async def probe_write(self) -> None:
        """Commit a tiny write (for /healthz); raises `StoreUnavailable` when the store
        cannot commit (disk full, read-only, down)."""

    # -- the outbox: committed in `conversation`, delivered by a sender -------------

    @abstractmethod
    async def claim_outbox(self, chat_key: str, owner: str, lease: timedelta, limit: int = 50) -> list[OutboxMessage]:
        """Claim the chat's unsent messages, oldest first, for `owner` until `lease` from
        now; [] while another owner holds a live lease on the chat or the chat is deferred
        (so one chat is sent by one sender at a time, in order, across replicas)."""

    @abstractmethod
    async def mark_sent(self, message_id: int) -> None:
        """The message went out (or was given up on): remove it from the outbox."""

    @abstractmethod
    async def defer_outbox(self, chat_key: str, until: datetime) -> None:
        """Release the chat's claimed messages, counting one more failed attempt, and let
        nobody claim them before `until` (a 429's retry_after, a backoff)."""

    @abstractmethod
    async def pending_chats(self, now: datetime, older_than: timedelta, limit: int = 100) -> list[str]:
        """Chats with unsent messages nobody may be sending: unclaimed for `older_than`
        (a crash after commit), or whose lease or deferral has passed."""

    @abstractmethod
    async def load(self, chat_key: str) -> Session | None:
        """Read a session without locking (for tools and tests)."""

    @abstractmethod
    async def record_event(self, name: str, chat_key: str, data: dict[str, Any]) -> None:
        """Count an anonymous event; the chat is kept only as a keyed hash."""

    @abstractmethod
    async def add_reminder(self, chat_key: str, due_at: datetime, payload: dict[str, Any]) -> int:
        """Plan a reminder; returns its id."""

    @abstractmethod
    async def due_reminders(self, now: datetime, limit: int = 100) -> list[Reminder]:
        """Reminders due at `now` or earlier, oldest first."""

    @abstractmethod
    async def purge_idle(self, idle_since: datetime) -> int:
        """Delete sessions not touched since `idle_since`; returns how many."""

    @abstractmethod
    async def stats(self) -> dict[str, int]:
        """Event counts by name, and the number of active conversations."""
