"""What became of one Telegram update: the one answer the router, the per-chat processor
and the webhook share (it decides the HTTP status and labels the metrics)."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """The values are the `result` label of the webhook's metrics."""

    HANDLED = "ok"
    # Applied before (the same update id): acknowledged, nothing done again.
    DUPLICATE = "duplicate"
    # Nothing to do (a group, an update type we do not handle, an unreadable shape).
    IGNORED = "ignored"
    # Beyond a flooding chat's backlog: not applied; Telegram should deliver it again.
    BUSY = "dropped"
    # A bug: the user got an apology; delivering it again would fail again.
    FAILED = "error"
    # A passing failure (network, database): nothing committed; Telegram should deliver it again.
    RETRY = "retry"

    @property
    def redeliver(self) -> bool:
        """Should Telegram deliver the update again (the webhook answers 503)?"""
        return self in (Outcome.BUSY, Outcome.RETRY)
