"""Fixtures for the Telegram suite: the stand-in Bot API, the real webhook process,
and simulated users (see tg_harness)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.tg_harness import (
    ADMIN_ID,
    TOKEN,
    StandIn,
    TgUser,
    Webhook,
    free_port,
    start_webhook,
    stop_webhook,
    webhook_env,
)


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    server = StandIn(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def webhook(standin: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    tmp = tmp_path_factory.mktemp("webhook")
    hook = start_webhook(webhook_env(standin.url, tmp, free_port(), ADMIN_IDS=str(ADMIN_ID)), tmp)
    yield hook
    stop_webhook(hook)


@pytest.fixture
def user(webhook: Webhook, standin: StandIn) -> TgUser:
    return TgUser(webhook, standin, "en")


@pytest.fixture
def zh_user(webhook: Webhook, standin: StandIn) -> TgUser:
    return TgUser(webhook, standin, "zh-hans")
