"""The webhook server: a Starlette app that hands each update to PTB inside the request.

Telegram re-sends an update until it gets a 2xx, and never again after one. So the
update is handled *inside* the request (`process_update` through the per-chat ordered
processor, not dropped on `update_queue`), and the answer is 200 only after the new
state is committed. A crash before that means Telegram delivers again; the store
applies an update id once. A passing failure (network, database), or an update beyond a
flooding chat's backlog, answers 503 for the same reason: Telegram delivers it again.
Everything else that is wrong with a request is refused up front: 403 without the
secret header, 413 over 1 MB, 400 for what is not an update.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from telegram import Update

from bot.channels.telegram import ALLOWED_UPDATES, Outcome, TelegramChannel, build_channel
from bot.channels.telegram.adapter import update_kind
from bot.config import Settings
from bot.conversations import Advisor
from bot.runtime import build_advisor, purge_forever
from bot.web.metrics import CONTENT_TYPE, WebhookMetrics

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_BODY = 1024 * 1024  # Telegram's updates are a few kB; 1 MB is generous and bounded.
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


def create_app(settings: Settings, advisor_factory: AdvisorFactory = build_advisor) -> Starlette:
    """The ASGI app: POST on the path of WEBHOOK_URL, GET /healthz, GET /metrics."""
    state = WebhookState(settings, advisor_factory)
    secret = settings.webhook_secret.encode()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await _start(state)
        try:
            yield
        finally:
            # uvicorn has already let in-flight requests finish (graceful SIGTERM).
            await _stop(state)

    async def webhook(request: Request) -> Response:
        offered = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(offered, secret):
            state.metrics.rejected.labels("secret").inc()
            return PlainTextResponse("forbidden", status_code=403)
        try:
            body = await _read_body(request, MAX_BODY)
        except _TooLarge:
            state.metrics.rejected.labels("too_large").inc()
            return PlainTextResponse("request body too large", status_code=413)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            state.metrics.rejected.labels("malformed").inc()
            return PlainTextResponse("malformed JSON", status_code=400)
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            state.metrics.rejected.labels("malformed").inc()
            return PlainTextResponse("not a Telegram update", status_code=400)
        return await _handle(state, data)

    async def healthz(request: Request) -> Response:
        healthy = await _healthy(state)
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
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.webhook = state
    return app


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
    state.metrics.observe(update_kind(update), outcome, time.perf_counter() - started)
    if outcome.redeliver:
        # A passing failure, or a flooding chat's update beyond its backlog: not applied,
        # so not acknowledged. Telegram delivers it again later; nothing is lost.
        return PlainTextResponse("try again", status_code=503, headers={"Retry-After": "1"})
    return Response(status_code=200)


async def _healthy(state: WebhookState) -> bool:
    advisor = state.advisor
    if advisor is None or state.channel is None:
        return False
    try:
        return bool(await asyncio.wait_for(advisor.store.ping(), timeout=5))
    except Exception:
        return False


async def _start(state: WebhookState) -> None:
    settings = state.settings
    state.advisor = await state.advisor_factory(settings)
    channel = build_channel(settings, state.advisor, webhook=True)
    application = channel.application
    await application.initialize()
    await application.start()
    state.channel = channel
    await channel.router.set_commands()
    await application.bot.set_webhook(
        url=settings.webhook_url,
        secret_token=settings.webhook_secret,
        allowed_updates=list(ALLOWED_UPDATES),
        max_connections=MAX_CONNECTIONS,
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
        with contextlib.suppress(Exception):
            await channel.application.stop()
        await channel.application.shutdown()
    if state.advisor is not None:
        await state.advisor.store.close()
        state.advisor = None
    log.info("webhook stopped")
