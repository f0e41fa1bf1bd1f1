"""The one logging filter: no secret reaches a log line, whichever route it takes."""

from __future__ import annotations

import io
import logging
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest

from bot.config import Settings
from bot.redaction import MASK, SecretFilter, database_password, redact, secrets_of
from bot.runtime import configure_logging

TOKEN = "123456789:AAHtestTOKENforTHEstandINserver_0123456"
OTHER_TOKEN = "987654321:ZZxOtherBotTokenThatIsNotOurs_abcdefgh"
SECRET = "test-secret_0123456789abcdef"
PASSWORD = "Pa55-w0rd/with@odd:chars"
QUOTED_PASSWORD = "Pa55-w0rd%2Fwith%40odd%3Achars"
HASH_KEY = "operator-hash-key"


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(
        "webhook",
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": "http://127.0.0.1:9",
            "WEBHOOK_URL": "http://127.0.0.1:8080/tg/x",
            "WEBHOOK_SECRET": SECRET,
            "DATABASE_URL": f"postgresql://advisor:{QUOTED_PASSWORD}@db:5432/advisor",
            "EVENT_HASH_KEY": HASH_KEY,
        },
    )


@pytest.fixture
def logged(settings: Settings) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose handler carries the filter, and what it printed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretFilter(secrets_of(settings)))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def assert_clean(text: str) -> None:
    for secret in (TOKEN, OTHER_TOKEN, SECRET, PASSWORD, QUOTED_PASSWORD, HASH_KEY, "AAHtestTOKEN"):
        assert secret not in text, (secret, text)


def test_the_settings_secrets_are_known(settings: Settings) -> None:
    assert set(secrets_of(settings)) == {TOKEN, SECRET, PASSWORD, HASH_KEY}


def test_messages_and_their_arguments_are_redacted(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.debug("HTTP Request: POST http://127.0.0.1:9/bot%s/getMe", TOKEN)
    logger.debug("Calling Bot API endpoint `setWebhook` with parameters `%s`", {"secret_token": SECRET})
    logger.info("pool: connecting to %s", f"postgresql://advisor:{QUOTED_PASSWORD}@db:5432/advisor")
    logger.warning("the hash key is %s", HASH_KEY)
    printed = stream.getvalue()
    assert_clean(printed)
    assert f"/bot{MASK}/getMe" in printed
    assert f"postgresql://advisor:{MASK}@db:5432/advisor" in printed
    assert printed.count(MASK) == 4


def test_exceptions_and_stacks_are_redacted(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    try:
        raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")
    except RuntimeError:
        logger.exception("start failed")
    try:
        try:
            raise ValueError(f"password={PASSWORD}")
        except ValueError as inner:
            raise OSError(f"cannot connect with secret {SECRET}") from inner
    except OSError:
        logger.error("chained", exc_info=True, stack_info=True)
    printed = stream.getvalue()
    assert "Traceback" in printed and "RuntimeError: The token `***` was rejected" in printed
    assert "The above exception was the direct cause" in printed
    assert_clean(printed)


def test_secret_shapes_are_redacted_whoever_they_belong_to() -> None:
    cases = {
        f"GET https://api.telegram.org/bot{OTHER_TOKEN}/getUpdates": "/bot***/getUpdates",
        f"url quoted: bot{OTHER_TOKEN.replace(':', '%3A')}/x": "bot***/x",
        "mysql://root:hunter2hunter2@localhost/db": "mysql://root:***@localhost/db",
        "redis://:onlypassword@cache:6379": "redis://:***@cache:6379",
        "dsn: host=db user=advisor password=s3cr3t dbname=a": "password=*** dbname=a",
        "conninfo \"password='with space'\"": "password=***",
        "PASSWORD: topsecret, next": "PASSWORD: ***, next",
    }
    for text, expected in cases.items():
        cleaned = redact(text)
        assert expected in cleaned, (text, cleaned)
        assert "hunter2" not in cleaned and "s3cr3t" not in cleaned and "topsecret" not in cleaned


def test_ordinary_text_is_left_alone() -> None:
    for text in (
        "webhook ready as @bot on 0.0.0.0:8080/…",
        "update 123456 handled in 12:30",
        "https://api.telegram.org/bot/getMe",
        "http://127.0.0.1:8080/healthz",
        "password authentication failed for user advisor",
    ):
        assert redact(text) == text


def test_a_password_is_found_in_a_malformed_url() -> None:
    assert database_password(f"postgresql://advisor:{QUOTED_PASSWORD}@db:5432/a") == PASSWORD
    assert database_password("postgresql://advisor:p4ss-word@db:notaport/a") == "p4ss-word"
    assert database_password("postgresql://advisor:p4ss@word@[::1/a") == "p4ss@word"
    assert database_password("sqlite:///data/bot.sqlite3") is None


def test_configure_logging_covers_root_handlers_warnings_and_uncaught_errors(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [handler])
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    try:
        configure_logging("DEBUG", settings)
        logging.getLogger("httpx").debug("HTTP Request: GET http://x/bot%s/getMe", TOKEN)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn(f"connection string postgresql://a:{QUOTED_PASSWORD}@h/d", RuntimeWarning, stacklevel=1)
        try:
            raise KeyError(SECRET)
        except KeyError:
            sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    finally:
        logging.captureWarnings(False)
        for name in ("httpx", "httpcore", "transitions"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    printed = stream.getvalue()
    assert_clean(printed)
    assert "KeyError" in printed and "uncaught exception" in printed
    assert printed.count(MASK) >= 3
