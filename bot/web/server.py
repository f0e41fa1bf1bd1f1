"""The HTTP server under the webhook: uvicorn, with the bounds a public port needs.

uvicorn bounds neither a connection that never sends a request nor one that sends its
head a byte a second (its keep-alive timer is disarmed by any byte received), so a
thousand such connections used to exhaust the open files and starve Telegram's
requests. `BoundedH11Protocol` gives each connection `HTTP_READ_TIMEOUT` seconds to
deliver a complete request head, counted from the connection's start and again from
the end of every response, and closes it otherwise; the app gives the body the same
time (408). Beyond `MAX_OPEN_CONNECTIONS` a new connection is closed as soon as it is
accepted. The numbers, and why, are beside the constants.

`run_webhook(settings)` blocks until SIGTERM/SIGINT; uvicorn then stops accepting,
lets in-flight updates finish (their state committed), and only then is the bot
stopped (PTB's application, the sender, the store).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle
from uvicorn.server import ServerState

from bot.config import Settings
from bot.runtime import configure_logging
from bot.web.app import create_app

log = logging.getLogger(__name__)

# Docker waits 10 s after SIGTERM by default (compose: stop_grace_period, k8s: 30 s);
# an update still running after this is simply delivered again by Telegram.
GRACEFUL_SECONDS = 8

# Connections. Telegram opens at most 40 to a webhook (`MAX_CONNECTIONS` in app.py), and
# the health check and a metrics scrape a few more; everything else is a client the bot
# does not need. Three bounds, from the inside out:
# - uvicorn answers 503 to a request once LIMIT_CONCURRENCY connections are open (it
#   counts idle connections, not only requests in flight). 2,048 leaves room for a
#   thousand idle connections, each closed after HTTP_READ_TIMEOUT, while Telegram's
#   updates and /healthz are still answered; beyond it Telegram is told to retry.
# - Beyond MAX_OPEN_CONNECTIONS a new connection is closed as soon as it is accepted,
#   before it costs a buffer, so the process never runs out of open files (accept()
#   failing with "Too many open files" is what flooded the logs). It is lowered to fit
#   the open-files limit, less FD_RESERVE.
# - FD_RESERVE: files the bot itself needs beside its clients: the database (SQLite
#   files, or a PostgreSQL pool), the Bot API connection pool, logs, the libraries.
LIMIT_CONCURRENCY = 2048
MAX_OPEN_CONNECTIONS = 4096
FD_RESERVE = 256
# The kernel's queue of connections not yet accepted (capped by net.core.somaxconn). It
# only has to absorb a burst while the event loop is busy; a longer queue would hold
# connections that time out before they are served.
BACKLOG = 512
# At most one line per this many seconds for each of the server's repeated warnings.
REPEAT_LOG_EVERY = 60.0


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard limit (the soft default, often
    1,024, is what a connection flood exhausted); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # "Unlimited" cannot be a soft limit on Linux (fs.nr_open caps it, 1,048,576 by default).
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-files limit from %d to %d", soft, target)
    return soft


def connection_limits(open_files: int) -> tuple[int, int]:
    """(limit_concurrency, max open connections) that fit under `open_files`."""
    max_open = max(1, min(MAX_OPEN_CONNECTIONS, open_files - FD_RESERVE))
    return min(LIMIT_CONCURRENCY, max_open), max_open


@dataclass
class _Shedding:
    """Connections refused at the cap, reported at most once per `REPEAT_LOG_EVERY`."""

    refused: int = 0
    reported_at: float = 0.0

    def count(self, max_open: int) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self.reported_at >= REPEAT_LOG_EVERY:
            log.warning(
                "refused %d connection(s): %d are open, the most this server keeps "
                "(see MAX_OPEN_CONNECTIONS in bot/web/server.py and the proxy limits in docs/deploy.md)",
                self.refused,
                max_open,
            )
            self.refused, self.reported_at = 0, now


class BoundedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for each request head and a cap on
    open connections. Use `BoundedH11Protocol.with_limits(...)` as uvicorn's `http=`."""

    read_timeout: ClassVar[float] = 10.0
    max_open: ClassVar[int] = MAX_OPEN_CONNECTIONS
    shedding: ClassVar[_Shedding] = _Shedding()

    @classmethod
    def with_limits(cls, read_timeout: float, max_open: int) -> type[BoundedH11Protocol]:
        """A subclass with these limits (uvicorn builds the protocol itself, one per connection)."""
        limits = {"read_timeout": read_timeout, "max_open": max_open, "shedding": _Shedding()}
        return type(cls.__name__, (cls,), limits)

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timer: asyncio.TimerHandle | None = None
        # The request cycle that was current when the deadline was set: a new cycle
        # means a new request head has been read.
        self._waiting_after: RequestResponseCycle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_open:
            self.shedding.count(self.max_open)
            transport.close()  # connection_lost follows and forgets it
            return
        self._await_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self.cycle is not self._waiting_after:
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        finished = self.cycle
        super().on_response_complete()
        # Unless a pipelined request is already under way, the next head is due in time.
        if self.cycle is finished and not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._cancel_head_timer()
        self._waiting_after = self.cycle
        self._head_timer = self.loop.call_later(self.read_timeout, self._head_too_late)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            # Idle, or a head trickling in: either way nothing to answer. DEBUG only: a
            # flood of these must not become a flood of log lines.
            log.debug("closed a connection without a complete request after %.1f s", self.read_timeout)
            self.transport.close()


class _OncePerWindow(logging.Filter):
    """Lets each message (by its format string) through at most once per `seconds`.

    uvicorn logs a line for each malformed request and each request over the concurrency
    limit; a flood of those must not become a flood of log lines.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg)[:200]
        now = time.monotonic()
        if now - self._last.get(key, -self.seconds) < self.seconds:
            return False
        self._last[key] = now
        return True


def run_webhook(settings: Settings) -> None:
    """Serve the webhook on HOST:PORT until stopped; exit code 1 if the bot cannot start."""
    configure_logging(settings.log_level, settings)
    open_files = raise_open_files_limit()
    limit_concurrency, max_open = connection_limits(open_files)
    logging.getLogger("uvicorn.error").addFilter(_OncePerWindow(REPEAT_LOG_EVERY))
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=BoundedH11Protocol.with_limits(settings.http_read_timeout, max_open),
        # No WebSocket: an upgrade request would hand the connection to another protocol,
        # out of reach of the deadlines above.
        ws="none",
        # uvicorn logs through the root handlers, whose filter redacts secrets.
        log_config=None,
        log_level=settings.log_level.lower(),
        # The access log would print the webhook path, which is a secret of sorts.
        access_log=False,
        server_header=False,
        # The keep-alive idle time is the head deadline: a proxy in front must close its
        # pooled connections sooner (docs/deploy.md), so it never sends a request on a
        # connection just as the server closes it.
        timeout_keep_alive=max(1, int(settings.http_read_timeout)),
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        limit_concurrency=limit_concurrency,
        backlog=BACKLOG,
        lifespan="on",
    )
    log.info(
        "open files: %d; connections: 503 from %d open, refused beyond %d; %.1f s to send a request",
        open_files,
        limit_concurrency,
        max_open,
        settings.http_read_timeout,
    )
    try:
        uvicorn.Server(config).run()
    except SystemExit:
        if app.start_failed:
            raise SystemExit(1) from None  # the reason is logged, on one line where known
        raise
    if app.start_failed:  # pragma: no cover - uvicorn exits on a failed start
        raise SystemExit(1)
