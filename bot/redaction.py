"""Secrets never reach a log line: one logging filter that blanks them out of every record.

Credentials get into logs by routes nobody wrote on purpose: httpx and httpcore print
each request URL at DEBUG (the Bot API URL carries the token), PTB puts the token into
the text of `InvalidToken`, a database driver repeats a malformed `DATABASE_URL` in its
warnings, a traceback quotes a connection string. So the filter does not trust any of
them: it rewrites each record's message (with its arguments merged in), its exception
text and its stack before any handler formats it, at every level.

It removes two kinds of things:

- the bot's own secrets, known literally (the token, the webhook secret, the database
  password, the statistics hash key; `secrets_of(settings)`);
- anything *shaped* like a secret, whoever's it is: a bot token (`123456:AA…`), the
  password of a `scheme://user:password@host` URL, a `password=…` pair of a DSN.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = ["MASK", "SecretFilter", "redact", "secrets_of"]

MASK = "***"
# A literal secret shorter than this is not searched for on its own: blanking every "ab"
# in the logs would hide more than it protects. The shapes below still catch it in a URL.
MIN_LITERAL = 4
# A bot token as @BotFather issues it: the bot's id, a colon (%3A once URL-quoted) and
# 35 URL-safe base64 characters. 5+ digits and 30+ characters keep ordinary "12:30" out.
TOKEN_SHAPE = re.compile(r"\d{5,}(?::|%3[Aa])[A-Za-z0-9_-]{30,}")
# scheme://user:password@host: the password is everything between the user's colon and
# the last "@" before the host (a password may itself contain "@" when not quoted).
URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s/]*@")
# password=… as libpq's key=value DSNs, query strings and config dumps write it.
PAIR_PASSWORD = re.compile(
    r"""(?P<head>\b(?:password|passwd|pwd)\s*[=:]\s*)(?:'[^']*'|"[^"]*"|[^\s&;,'")]+)""", re.IGNORECASE
)


def _literals(secrets: Iterable[str]) -> tuple[str, ...]:
    """Each secret as written and as it looks URL-quoted, longest first (so a secret that
    contains another is blanked whole)."""
    found: set[str] = set()
    for secret in secrets:
        if len(secret) >= MIN_LITERAL:
            found.update({secret, quote(secret, safe=""), quote(secret)})
    return tuple(sorted(found, key=len, reverse=True))


def redact(text: str, literals: Iterable[str] = ()) -> str:
    """`text` with every known secret and everything shaped like one replaced by `MASK`."""
    for literal in literals:
        if literal in text:
            text = text.replace(literal, MASK)
    text = TOKEN_SHAPE.sub(MASK, text)
    text = URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", text)
    return PAIR_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}", text)


def database_password(url: str) -> str | None:
    """The password in a database URL, also when the URL is malformed (a bad port, a
    stray character): that is exactly when a driver quotes it in an error."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password is None:
        # user:password@ as written, even where urlsplit gives up.
        match = re.search(r"://[^:/@]*:(.*)@", url)
        password = match.group(1) if match else None
    return unquote(password) if password else None


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """What in the settings must never be printed."""
    candidates = (
        settings.telegram_bot_token,
        settings.webhook_secret,
        database_password(settings.database_url) or "",
        settings.event_hash_key.decode("utf-8", "replace") if settings.event_hash_key else "",
    )
    return tuple(candidate for candidate in candidates if candidate)


class SecretFilter(logging.Filter):
    """Rewrites each record so no handler can print a secret; never drops a record.

    Install it on the handlers (a filter on a logger does not see records that its
    children propagate). The record's message is rendered once, with its arguments, and
    kept as the redacted text; its exception and stack are rendered and redacted the
    same way, and the exception object itself is dropped so no formatter renders it again.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.literals = _literals(secrets)
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging would report it; keep the raw parts
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact(message, self.literals), None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.literals)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.literals)
        return True
