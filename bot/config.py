"""Configuration from the environment, validated once at start.

Every setting is one row of `FIELDS` (in the style of Starlette's `Config`): its
attribute, its variable, its default, how it is read and checked, and what it means.
docs/deploy.md lists the same variables for operators. Every problem is reported on
its own line, so an operator fixes them all in one go, and the CLI exits with code 2
instead of a traceback. Nothing else in the bot reads the environment.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.i18n.catalog import CHINESE, normalize_locale
from bot.problems import ProblemsError

OFFICIAL_API_HOST = "api.telegram.org"
# Telegram accepts 1-256 characters of A-Z a-z 0-9 _ - as `secret_token`; anything
# shorter than 16 is guessable, so we refuse it even though Telegram would not.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
SECRET_MIN = 16
SECRET_MAX = 256
# BotFather tokens look like 123456789:AA...; the part after the colon is URL-safe base64.
TOKEN_PATTERN = re.compile(r"\d+:[A-Za-z0-9_-]{20,}")
# The ports Telegram delivers webhooks to (any port works with a self-hosted Bot API server).
TELEGRAM_WEBHOOK_PORTS = (80, 88, 443, 8443)
TELEGRAM_MODES = ("polling", "webhook")
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ProblemsError):
    """The environment does not describe a runnable bot; `problems` says why, one line each."""


@dataclass
class _Reading:
    """What a parser may consult: the command, the settings read so far, and where to
    report a problem."""

    mode: str
    values: dict[str, Any]
    problems: list[str]

    @property
    def telegram(self) -> bool:
        return self.mode in TELEGRAM_MODES


Parser = Callable[[str, _Reading], Any]


@dataclass(frozen=True)
class Field:
    """One setting: `attr` of `Settings`, read from `env` (stripped; empty means unset),
    `default` when unset, checked and converted by `parse`."""

    attr: str
    env: str
    default: str
    parse: Parser
    help: str


# --- parsers: each returns the value and appends any problem to `reading.problems` ------


def _token(raw: str, reading: _Reading) -> str:
    if reading.telegram and not raw:
        reading.problems.append("TELEGRAM_BOT_TOKEN is missing: ask @BotFather for a token.")
    elif raw and not TOKEN_PATTERN.fullmatch(raw):
        # Never echo the token itself: it is a credential.
        reading.problems.append(
            "TELEGRAM_BOT_TOKEN does not look like a bot token (expected 123456:ABC..., as @BotFather gives it)."
        )
    return raw


def _api_url(raw: str, reading: _Reading) -> str:
    api_url = raw.rstrip("/") or DEFAULT_API_URL
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        reading.problems.append(f"TELEGRAM_API_URL must be an http(s) URL such as {DEFAULT_API_URL}, got {api_url!r}.")
    return api_url


def _webhook_url(raw: str, reading: _Reading) -> str:
    if reading.mode == "webhook":
        official = urlsplit(reading.values.get("telegram_api_url", "")).hostname == OFFICIAL_API_HOST
        reading.problems.extend(_check_webhook_url(raw, official_api=official))
    return raw


def _secret(raw: str, reading: _Reading) -> str:
    if reading.mode == "webhook":
        reading.problems.extend(_check_secret(raw))
    return raw


def _text(raw: str, reading: _Reading) -> str:
    return raw


def _whole(low: int, high: int) -> Callable[[str, str, _Reading], int]:
    def parse(name: str, raw: str, reading: _Reading) -> int:
        try:
            value = int(raw)
        except ValueError:
            reading.problems.append(f"{name} must be a whole number, got {raw!r}.")
            return low
        if not low <= value <= high:
            reading.problems.append(f"{name} must be between {low} and {high}, got {value}.")
        return value

    return parse


def _port(raw: str, reading: _Reading) -> int:
    return _whole(1, 65535)("PORT", raw, reading)


def _amount(low: float, high: float, fallback: float, what: str) -> Callable[[str, str, _Reading], float]:
    """A parser of a number between `low` and `high` (`what` it measures, for the problem)."""

    def parse(name: str, raw: str, reading: _Reading) -> float:
        try:
            value = float(raw)
            if not low <= value <= high:
                raise ValueError(raw)
        except ValueError:
            reading.problems.append(f"{name} must be {what}, got {raw!r}.")
            return fallback
        return value

    return parse


def _read_timeout(raw: str, reading: _Reading) -> float:
    parse = _amount(0.5, 300, float(DEFAULT_READ_TIMEOUT), "seconds between 0.5 and 300")
    return parse("HTTP_READ_TIMEOUT", raw, reading)


def _ttl(raw: str, reading: _Reading) -> int:
    return _whole(1, 36500)("SESSION_TTL_DAYS", raw, reading)


def _database_url(raw: str, reading: _Reading) -> str:
    scheme = raw.split(":", 1)[0].lower() if ":" in raw else ""
    if scheme not in DATABASE_SCHEMES:
        reading.problems.append(
            f"DATABASE_URL must start with sqlite:/// or postgresql://, got a URL with scheme {scheme or '(none)'!r}."
        )
    return raw


def _admin_ids(raw: str, reading: _Reading) -> tuple[int, ...]:
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.append(int(part))
        except ValueError:
            reading.problems.append(f"ADMIN_IDS must be Telegram user ids separated by commas, got {part!r}.")
    return tuple(ids)


def _folder(name: str) -> Parser:
    def parse(raw: str, reading: _Reading) -> Path | None:
        if not raw:
            return None
        path = Path(raw)
        if not path.is_dir():
            reading.problems.append(f"{name} is not a folder: {raw!r}.")
            return None
        return path

    return parse


def _max_rate(raw: str, reading: _Reading) -> float:
    parse = _amount(0, 10_000, float(DEFAULT_MAX_RATE), "messages per second (0 = no limit)")
    return parse("TELEGRAM_MAX_RATE", raw, reading)


def _log_level(raw: str, reading: _Reading) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        reading.problems.append(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}.")
    return level


def _late_minutes(raw: str, reading: _Reading) -> int:
    return _whole(0, 7 * 24 * 60)("REMINDER_LATE_MINUTES", raw, reading)


def _clock_file(raw: str, reading: _Reading) -> Path | None:
    return Path(raw) if raw else None


def _hash_key(raw: str, reading: _Reading) -> bytes | None:
    return raw.encode("utf-8") if raw else None


DEFAULT_API_URL = "https://api.telegram.org"
DEFAULT_DATABASE_URL = "sqlite:///data/bot.sqlite3"
DEFAULT_MAX_RATE = "30"
DEFAULT_READ_TIMEOUT = "10"

# In reading order: a parser may consult the values above it (WEBHOOK_URL reads TELEGRAM_API_URL).
FIELDS: tuple[Field, ...] = (
    Field("telegram_bot_token", "TELEGRAM_BOT_TOKEN", "", _token, "the token from @BotFather (polling, webhook)"),
    Field("telegram_api_url", "TELEGRAM_API_URL", DEFAULT_API_URL, _api_url, "root of the Bot API server"),
    Field("webhook_url", "WEBHOOK_URL", "", _webhook_url, "the public URL Telegram posts to (webhook)"),
    Field("webhook_secret", "WEBHOOK_SECRET", "", _secret, "Telegram's secret_token, 16-256 characters (webhook)"),
    # A container listens on all interfaces by design.
    Field("host", "HOST", "0.0.0.0", _text, "where the webhook server listens"),  # noqa: S104
    Field("port", "PORT", "8080", _port, "the webhook server's port"),
    # Each connection gets this long to send a request's head, from its start and after
    # every response (so also the idle keep-alive), and again for the body (408 after).
    Field(
        "http_read_timeout",
        "HTTP_READ_TIMEOUT",
        DEFAULT_READ_TIMEOUT,
        _read_timeout,
        "seconds a client has to send a request's head, then its body",
    ),
    Field("database_url", "DATABASE_URL", DEFAULT_DATABASE_URL, _database_url, "sqlite:///path or postgresql://…"),
    Field("admin_ids", "ADMIN_IDS", "", _admin_ids, "Telegram user ids allowed /stats and /reload, comma-separated"),
    Field("session_ttl_days", "SESSION_TTL_DAYS", "30", _ttl, "idle conversations are deleted after this"),
    Field("dialogs_dir", "DIALOGS_DIR", "", _folder("DIALOGS_DIR"), "an operator's dialogs (default: bundled)"),
    Field("locales_dir", "LOCALES_DIR", "", _folder("LOCALES_DIR"), "an operator's catalogs (default: bundled)"),
    # Outgoing messages per second over all chats (Telegram's broadcast limit is about 30);
    # 0 turns the overall limit off, e.g. behind a self-hosted Bot API server.
    Field("telegram_max_rate", "TELEGRAM_MAX_RATE", DEFAULT_MAX_RATE, _max_rate, "messages per second, 0 = no limit"),
    Field("log_level", "LOG_LEVEL", "INFO", _log_level, "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    Field("event_hash_key", "EVENT_HASH_KEY", "", _hash_key, "key of the statistics hash (default: kept in the DB)"),
    # A reminder missed (the bot was down) by at most this long is sent late, once;
    # an older one waits for its next occurrence (bot/reminders).
    Field("reminder_late_minutes", "REMINDER_LATE_MINUTES", "360", _late_minutes, "how late a reminder is still sent"),
    # For tests only: the process's reminder clock is the system's plus the seconds in
    # this file, re-read when it changes (tests drive a running process's time with it).
    Field("clock_offset_file", "CLOCK_OFFSET_FILE", "", _clock_file, "tests only: seconds added to the clock"),
)


@dataclass(frozen=True)
class Settings:
    """Everything the bot reads from its environment (see `FIELDS` and docs/deploy.md)."""

    mode: str
    # Credentials stay out of repr(), so a logged Settings never leaks them.
    telegram_bot_token: str = field(repr=False)
    telegram_api_url: str
    webhook_url: str
    webhook_secret: str = field(repr=False)
    host: str
    port: int
    http_read_timeout: float
    database_url: str = field(repr=False)  # may hold a password
    admin_ids: tuple[int, ...]
    session_ttl_days: int
    dialogs_dir: Path | None
    locales_dir: Path | None
    telegram_max_rate: float
    log_level: str
    event_hash_key: bytes | None = field(repr=False)
    reminder_late_minutes: int
    clock_offset_file: Path | None

    @property
    def webhook_path(self) -> str:
        """The path Telegram posts to: the path of `WEBHOOK_URL` (at least "/")."""
        return urlsplit(self.webhook_url).path or "/"

    @property
    def bot_api_base_url(self) -> str:
        """What PTB's `base_url` wants: the bot calls `{root}/bot{token}/{method}`."""
        return f"{self.telegram_api_url}/bot"

    @property
    def bot_api_file_url(self) -> str:
        """Where files are downloaded from (unused today; kept consistent with the API root)."""
        return f"{self.telegram_api_url}/file/bot"

    @classmethod
    def from_env(cls, mode: str, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment for `mode` (`polling`, `webhook`, or any
        other command, which needs no Telegram settings). Raises `ConfigError`."""
        env = os.environ if environ is None else environ
        reading = _Reading(mode, {}, [])
        for setting in FIELDS:
            raw = env.get(setting.env, "").strip() or setting.default
            reading.values[setting.attr] = setting.parse(raw, reading)
        if reading.problems:
            raise ConfigError(reading.problems)
        return cls(mode=mode, **reading.values)


def load_settings_or_exit(mode: str, environ: Mapping[str, str] | None = None) -> Settings:
    """`Settings.from_env`, or every problem on stderr and exit code 2 (no traceback)."""
    try:
        return Settings.from_env(mode, environ)
    except ConfigError as error:
        print(f"Cannot start `{mode}`: the configuration has problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("See docs/deploy.md for every variable.", file=sys.stderr)
        raise SystemExit(2) from None


def terminal_locale(environ: Mapping[str, str] | None = None) -> str:
    """The terminal's language (LC_ALL, LC_MESSAGES, LANG, as POSIX orders them); Chinese when unknown."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value and value not in ("C", "POSIX") and not value.startswith("C."):
            return normalize_locale(value, default=CHINESE)
    return CHINESE


def _check_webhook_url(url: str, *, official_api: bool) -> list[str]:
    if not url:
        return [
            "WEBHOOK_URL is missing: the public https:// URL Telegram posts updates to "
            "(e.g. https://bot.example.com/tg/<random>)."
        ]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"WEBHOOK_URL must be an https:// URL, got {url!r}."]
    problems: list[str] = []
    if parts.query or parts.fragment:
        problems.append("WEBHOOK_URL must not have a ?query or #fragment: only the path is routed.")
    if official_api:
        # The self-hosted Bot API server (TELEGRAM_API_URL) may post over plain HTTP to any port.
        if parts.scheme != "https":
            problems.append(
                "WEBHOOK_URL must use https:// (Telegram refuses plain HTTP webhooks); "
                "put the bot behind a TLS reverse proxy, see docs/deploy.md."
            )
        try:
            port = parts.port or 443
        except ValueError:
            port = -1
        if port not in TELEGRAM_WEBHOOK_PORTS:
            problems.append(
                f"WEBHOOK_URL must use port 443, 80, 88 or 8443 (the only ports Telegram posts to), got {port}."
            )
    return problems


def _check_secret(secret: str) -> list[str]:
    if not secret:
        return [
            f"WEBHOOK_SECRET is missing: {SECRET_MIN}-{SECRET_MAX} characters of "
            "A-Z a-z 0-9 _ - (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
        ]
    problems: list[str] = []
    if not SECRET_PATTERN.fullmatch(secret):
        problems.append("WEBHOOK_SECRET may only contain A-Z a-z 0-9 _ - (Telegram refuses other characters).")
    if len(secret) < SECRET_MIN:
        problems.append(f"WEBHOOK_SECRET is too short ({len(secret)} characters): use at least {SECRET_MIN}.")
    elif len(secret) > SECRET_MAX:
        problems.append(f"WEBHOOK_SECRET is too long ({len(secret)} characters): Telegram allows {SECRET_MAX}.")
    return problems
