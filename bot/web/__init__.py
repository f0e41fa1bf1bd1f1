"""The production entry point: the webhook server (Starlette under uvicorn).

`run_webhook(settings)` blocks until SIGTERM/SIGINT; uvicorn then stops accepting,
lets in-flight updates finish (their state committed), and only then the lifespan
shuts PTB's application and the store down.
"""

from __future__ import annotations

import uvicorn

from bot.config import Settings
from bot.runtime import configure_logging
from bot.web.app import create_app

__all__ = ["create_app", "run_webhook"]

# Docker waits 10 s after SIGTERM by default (compose: stop_grace_period, k8s: 30 s);
# an update still running after this is simply delivered again by Telegram.
GRACEFUL_SECONDS = 8


def run_webhook(settings: Settings) -> None:
    """Serve the webhook on HOST:PORT until stopped."""
    configure_logging(settings.log_level)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # The access log would print the webhook path, which is a secret of sorts.
        access_log=False,
        server_header=False,
        # Longer than the idle timeout of Telegram's and proxies' pooled connections
        # (nginx: 60 s), so the server never closes a connection just as a request
        # is sent on it (which the client sees as a reset and must retry).
        timeout_keep_alive=75,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        lifespan="on",
    )
    uvicorn.Server(config).run()
