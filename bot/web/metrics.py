"""Prometheus metrics of the webhook server (a registry of its own, so tests can build
several apps in one process without "duplicated timeseries" errors)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.channels.telegram.outcome import Outcome

__all__ = ["CONTENT_TYPE", "WebhookMetrics"]

# Handling includes Telegram round trips (one to three per update), so most land in 10-250 ms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WebhookMetrics:
    """Counters, the latency histogram and gauges exposed on GET /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.updates = Counter(
            "overdue_updates_handled",
            "Telegram updates handled, by update type and result (ok, duplicate, ignored, dropped, error, retry).",
            ["type", "result"],
            registry=self.registry,
        )
        self.errors = Counter(
            "overdue_update_errors",
            "Updates that failed: kind=bug (answered with an apology) or kind=transient "
            "(answered 503 so Telegram delivers them again).",
            ["type", "kind"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "overdue_webhook_rejected",
            "Webhook requests refused before handling, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "overdue_update_handling_seconds",
            "Time from receiving an update to answering Telegram (state committed).",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "overdue_updates_in_flight",
            "Updates being handled right now.",
            registry=self.registry,
        )
        self.active_conversations = Gauge(
            "overdue_active_conversations",
            "Conversations kept in the store (refreshed at each scrape).",
            registry=self.registry,
        )

    def observe(self, kind: str, outcome: Outcome, seconds: float) -> None:
        """Count one handled update."""
        self.updates.labels(kind, outcome.value).inc()
        self.latency.labels(kind).observe(seconds)
        if outcome is Outcome.FAILED:
            self.errors.labels(kind, "bug").inc()
        elif outcome is Outcome.RETRY:
            self.errors.labels(kind, "transient").inc()

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
