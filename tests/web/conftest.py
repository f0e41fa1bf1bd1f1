"""Fixtures for the server's bounds: the stand-in Bot API and one real webhook process
with short deadlines (HTTP_READ_TIMEOUT=2), shared by the tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.tg_harness import TOKEN, StandIn, Webhook, free_port, start_webhook, stop_webhook, webhook_env

# Short, so waiting for it keeps the tests fast; long enough that a loaded machine
# answers a prompt request well inside it.
READ_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    server = StandIn(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def webhook(standin: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    tmp = tmp_path_factory.mktemp("webhook")
    hook = start_webhook(webhook_env(standin.url, tmp, free_port(), HTTP_READ_TIMEOUT=str(READ_TIMEOUT)), tmp)
    yield hook
    stop_webhook(hook)
