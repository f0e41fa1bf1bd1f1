"""The production entry point: the webhook server (Starlette under uvicorn).

`create_app` (app.py) is the ASGI app, `run_webhook` (server.py) serves it with the
bounds a public port needs.
"""

from __future__ import annotations

from bot.web.app import create_app
from bot.web.server import run_webhook

__all__ = ["create_app", "run_webhook"]
