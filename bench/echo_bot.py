"""A bare PTB echo bot with the advisor's webhook shape: the baseline of the benchmark.

Starlette under uvicorn, PTB's Application built with `.updater(None)`, the update
handled inside the request, the text echoed with one sendMessage. No store, no engine,
no rendering: what any PTB webhook bot costs at the least.

    TELEGRAM_BOT_TOKEN=… TELEGRAM_API_URL=http://127.0.0.1:PORT WEBHOOK_URL=http://127.0.0.1:8081/echo \
    WEBHOOK_SECRET=… PORT=8081 python bench/echo_bot.py
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_chat is not None and update.message is not None and update.message.text:
        await context.bot.send_message(update.effective_chat.id, update.message.text)


def create_app() -> Starlette:
    token = os.environ["TELEGRAM_BOT_TOKEN"]
    api = os.environ.get("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")
    webhook_url = os.environ["WEBHOOK_URL"]
    secret = os.environ["WEBHOOK_SECRET"].encode()
    application: Application = (  # type: ignore[type-arg]
        ApplicationBuilder().token(token).base_url(f"{api}/bot").updater(None).build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await application.initialize()
        await application.start()
        await application.bot.set_webhook(webhook_url, secret_token=secret.decode())
        yield
        await application.stop()
        await application.shutdown()

    async def webhook(request: Request) -> Response:
        offered = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
        if not hmac.compare_digest(offered, secret):
            return Response(status_code=403)
        try:
            data = json.loads(await request.body())
        except ValueError:
            return Response(status_code=400)
        await application.process_update(Update.de_json(data, application.bot))
        return Response(status_code=200)

    async def healthz(request: Request) -> Response:
        return Response('{"status": "ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route(urlsplit(webhook_url).path or "/", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


if __name__ == "__main__":
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8081")),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=10,  # as the advisor (HTTP_READ_TIMEOUT, bot/web/server.py)
    )
