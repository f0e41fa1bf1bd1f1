"""The webhook server: a Starlette app that hands each update to PTB inside the request.

Telegram re-sends an update until it gets a 2xx, and never again after one. So the
update is handled *inside* the request (`process_update` through the per-chat ordered
processor, not dropped on `update_queue`), and the answer is 200 only after the new
state is committed. A crash before that means Telegram delivers again; the store
applies an update id once. A passing failure (network, database), or an update beyond a
flooding chat's backlog, answers 503 for the same reason: Telegram delivers it again.
Everything else that is wrong with a request is refused up front: 403 without the
secret header (checked before the body is read), 413 over 1 MB, 408 for a body slower
than HTTP_READ_TIMEOUT, 400 for what is not an update (not JSON, nested deeper than
`MAX_JSON_DEPTH`, no update id). An update the bot cannot use is acknowledged with 200;
nothing answers 500, which Telegram would retry forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from telegram import Update
from telegram.error import InvalidToken

from bot.channels.telegram import ALLOWED_UPDATES, Outcome, TelegramChannel, build_channel
from bot.channels.telegram.adapter import update_kind
from bot.channels.telegram.app import refused_token
from bot.channels.telegram.ratelimit import patiently
from bot.config import Settings
from bot.conversations import Advisor
from bot.problems import ProblemsError
from bot.runtime import build_advisor, purge_forever, reload_on_hangup
from bot.store.base import StoreUnavailable
from bot.web.metrics import CONTENT_TYPE, WebhookMetrics

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_BODY = 1024 * 1024  # Telegram's updates are a few kB; 1 MB is generous and bounded.
# Telegram's updates nest about a dozen levels at most (a keyboard in a replied-to message
# inside a callback query); 64 is far beyond that and far below where recursion gives out.
MAX_JSON_DEPTH = 64
# Telegram opens at most this many connections at once (setWebhook max_connections).
MAX_CONNECTIONS = 40

AdvisorFactory = Callable[[Settings], Awaitable[Advisor]]


@dataclass
class WebhookState:
    """What the running server holds between lifespan start and stop."""

    settings: Settings
    advisor_factory: AdvisorFactory
    metrics: WebhookMetrics = field(default_factory=WebhookMetrics)
    channel: TelegramChannel | None = None
    advisor: Advisor | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class _TooLarge(Exception):
    pass


class _TooDeep(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused once it passes `limit` (a lying Content-Length gains nothing)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _TooLarge
        except ValueError:
            raise _TooLarge from None  # a garbled length is not worth reading
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def parse_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of `body`; `_TooDeep` when arrays and objects nest deeper than
    `max_depth` (the decoder itself gives up with a RecursionError near 1,000 levels, and
    everything downstream would recurse as deep). `ValueError` for what is not JSON."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise _TooDeep from None
    # Breadth-first, with an explicit queue: measuring depth must not recurse either.
    level: list[Any] = [data]
    for _ in range(max_depth):
        level = [
            child
            for value in level
            if isinstance(value, dict | list)
            for child in (value.values() if isinstance(value, dict) else value)
            if isinstance(child, dict | list)
        ]
        if not level:
            return data
    raise _TooDeep


def _origin(error: BaseException) -> str:
    """Where an error came from, without its message (which may quote the update)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    return f"{type(error).__name__} in {last.name} ({Path(last.filename).name}:{last.lineno})"


class WebhookApp:
    """The ASGI app: Starlette serves the routes; the bot is started and stopped on the
    ASGI lifespan events here, so a failed start is reported in the bot's words (one
    line for a refused token) rather than as the traceback Starlette would send."""

    def __init__(self, state: WebhookState, routes: list[Route]) -> None:
        self.state = state
        self.routes = Starlette(routes=routes)
        self.start_failed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.routes(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            await _start(self.state)
        except Exception as error:
            self.start_failed = True
            _report_start_failure(error, self.state.settings)
            with contextlib.suppress(Exception):
                await _stop(self.state)
            await send({"type": "lifespan.startup.failed", "message": ""})
            return
        await send({"type": "lifespan.startup.complete"})
        # SIGHUP loads the dialogs and catalogs again (docs/operators.md) instead of ending
        # the process; the same reload as an operator's /reload.
        reloader = self.state.channel.router.reloader if self.state.channel else None
        stop_reloading = reload_on_hangup(reloader.reload) if reloader else None
        await receive()  # lifespan.shutdown: uvicorn has let in-flight requests finish
        if stop_reloading is not None:
            stop_reloading()
        try:
            await _stop(self.state)
        except Exception:
            log.error("the webhook did not stop cleanly", exc_info=True)
            await send({"type": "lifespan.shutdown.failed", "message": ""})
            return
        await send({"type": "lifespan.shutdown.complete"})


def _report_start_failure(error: Exception, settings: Settings) -> None:
    """One line for what an operator fixes in the settings or the dialogs (a refused token,
    an unusable database, problems in the dialogs); a (redacted) traceback otherwise."""
    if isinstance(error, InvalidToken):
        # PTB's own message quotes the token in full: never logged.
        log.error("%s", refused_token(settings.telegram_api_url))
    elif isinstance(error, StoreUnavailable):
        log.error("the webhook cannot start: the database cannot be used (%s); check DATABASE_URL.", error)
    elif isinstance(error, ProblemsError):
        for problem in error.problems:
            log.error("%s", problem)
        log.error("the webhook cannot start: %d problem(s) above", len(error.problems))
    else:
        log.error("the webhook cannot start", exc_info=error)


def create_app(settings: Settings, advisor_factory: AdvisorFactory = build_advisor) -> WebhookApp:
    """The ASGI app: POST on the path of WEBHOOK_URL, GET /healthz, GET /metrics."""
    state = WebhookState(settings, advisor_factory)
    secret = settings.webhook_secret.encode()

    async def webhook(request: Request) -> Response:
        started = time.perf_counter()
        try:
            return await _receive(state, request, secret)
        except Exception as error:
            # Nothing in a request may end in a 500: Telegram would deliver it again and
            # again, and it would fail again. Acknowledged, and said without its content.
            log.warning("a webhook request failed (%s); acknowledged, not handled", _origin(error))
            state.metrics.observe("other", Outcome.FAILED, time.perf_counter() - started)
            return Response(status_code=200)

    async def healthz(request: Request) -> Response:
        try:
            healthy = await _healthy(state)
        except Exception as error:  # a probe that breaks says "unhealthy", never 500
            log.warning("the health check failed (%s)", _origin(error))
            healthy = False
        return JSONResponse({"status": "ok" if healthy else "unavailable"}, status_code=200 if healthy else 503)

    async def metrics(request: Request) -> Response:
        if state.advisor is not None:
            with contextlib.suppress(Exception):  # a scrape must not fail on the database
                stats = await state.advisor.store.stats()
                state.metrics.active_conversations.set(stats.get("active_conversations", 0))
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    routes = [
        Route(settings.webhook_path, webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return WebhookApp(state, routes)


async def _receive(state: WebhookState, request: Request, secret: bytes) -> Response:
    """Check the secret (before a byte of the body is read), read the body within its
    size and time, and hand what is an update to `_handle`."""
    offered = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(offered, secret):
        state.metrics.rejected.labels("secret").inc()
        return PlainTextResponse("forbidden", status_code=403)
    try:
        async with asyncio.timeout(state.settings.http_read_timeout):
            body = await _read_body(request, MAX_BODY)
    except _TooLarge:
        state.metrics.rejected.labels("too_large").inc()
        return PlainTextResponse("request body too large", status_code=413)
    except TimeoutError:
        state.metrics.rejected.labels("too_slow").inc()
        return PlainTextResponse("request body too slow", status_code=408, headers={"Connection": "close"})
    except ClientDisconnect:
        # The client gave up mid-body (Telegram delivers the update again): not an error.
        log.debug("the client disconnected while sending an update")
        state.metrics.rejected.labels("disconnected").inc()
        return Response(status_code=400)  # nobody is left to read it
    try:
        data = parse_json(body)
    except _TooDeep:
        state.metrics.rejected.labels("malformed").inc()
        return PlainTextResponse(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", status_code=400)
    except (ValueError, UnicodeDecodeError):
        state.metrics.rejected.labels("malformed").inc()
        return PlainTextResponse("malformed JSON", status_code=400)
    if not isinstance(data, dict) or type(data.get("update_id")) is not int:
        state.metrics.rejected.labels("malformed").inc()
        return PlainTextResponse("not a Telegram update", status_code=400)
    return await _handle(state, data)


def _kind(update: Update) -> str:
    """The update's type for the metrics; "other" for a shape `update_kind` cannot read
    (a `text` that is a number, say)."""
    try:
        return update_kind(update)
    except Exception:
        return "other"


async def _handle(state: WebhookState, data: dict[str, object]) -> Response:
    channel = state.channel
    if channel is None:  # pragma: no cover - requests arrive only after start
        return PlainTextResponse("starting", status_code=503)
    started = time.perf_counter()
    try:
        update = Update.de_json(data, channel.application.bot)
    except Exception:
        # Valid JSON with an update id, but a shape PTB cannot read (a newer Bot API?):
        # acknowledge it, or Telegram would retry it forever.
        log.warning("update %s has an unreadable shape; ignored", data.get("update_id"))
        state.metrics.observe("other", Outcome.IGNORED, time.perf_counter() - started)
        return Response(status_code=200)
    state.metrics.in_flight.inc()
    try:
        # Through the processor, so this chat's updates run in order and others in parallel.
        outcome = await channel.handle(update)
    except Exception:  # pragma: no cover - the router answers every failure itself
        outcome = Outcome.FAILED
        log.error("update %s crashed the handler", update.update_id, exc_info=True)
    finally:
        state.metrics.in_flight.dec()
    state.metrics.observe(_kind(update), outcome, time.perf_counter() - started)
    if outcome.redeliver:
        # A passing failure, or a flooding chat's update beyond its backlog: not applied,
        # so not acknowledged. Telegram delivers it again later; nothing is lost.
        return PlainTextResponse("try again", status_code=503, headers={"Retry-After": "1"})
    return Response(status_code=200)


async def _healthy(state: WebhookState) -> bool:
    advisor = state.advisor
    if advisor is None or state.channel is None:
        return False
    # Reading is not enough: a full disk or a read-only database still answers reads
    # while every update fails to commit. A probe write, cached for a couple of seconds.
    return await advisor.can_commit()


async def _start(state: WebhookState) -> None:
    settings = state.settings
    state.advisor = await state.advisor_factory(settings)
    channel = build_channel(settings, state.advisor, webhook=True)
    application = channel.application
    await application.initialize()
    await application.start()
    state.channel = channel
    # Before Telegram is told where to post: whatever a previous process committed and
    # did not send goes first.
    await channel.start_delivery()
    await channel.router.set_commands()
    await patiently(
        lambda: application.bot.set_webhook(
            url=settings.webhook_url,
            secret_token=settings.webhook_secret,
            allowed_updates=list(ALLOWED_UPDATES),
            max_connections=MAX_CONNECTIONS,
        )
    )
    state.tasks.append(asyncio.create_task(purge_forever(state.advisor, settings.session_ttl_days)))
    log.info(
        "webhook ready as @%s on %s:%s%s",
        application.bot.username,
        settings.host,
        settings.port,
        "/…",  # the path is a secret of sorts: not logged
    )


async def _stop(state: WebhookState) -> None:
    for task in state.tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    channel = state.channel
    if channel is not None:
        state.channel = None
        # Before the bot shuts down: sends in flight still need its connections.
        await channel.stop_delivery()
        with contextlib.suppress(Exception):
            await channel.application.stop()
        await channel.application.shutdown()
    if state.advisor is not None:
        await state.advisor.store.close()
        state.advisor = None
    log.info("webhook stopped")
