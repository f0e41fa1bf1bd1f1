"""Configuration from the environment, validated once at start.

The variables are the operational contract in docs/design.md (and docs/deploy.md):
every problem is reported on its own line, so an operator fixes them all in one go,
and the CLI exits with code 2 instead of a traceback.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_API_URL = "https://api.telegram.org"
DEFAULT_DATABASE_URL = "sqlite:///data/bot.sqlite3"
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


class ConfigError(Exception):
    """The environment does not describe a runnable bot; `problems` says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """Everything the bot reads from its environment (see docs/deploy.md)."""

    mode: str
    # Credentials stay out of repr(), so a logged Settings never leaks them.
    telegram_bot_token: str = field(default="", repr=False)
    telegram_api_url: str = DEFAULT_API_URL
    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False)
    host: str = "0.0.0.0"  # noqa: S104 - a container listens on all interfaces by design
    port: int = 8080
    database_url: str = DEFAULT_DATABASE_URL
    admin_ids: tuple[int, ...] = ()
    session_ttl_days: int = 30
    dialogs_dir: Path | None = None
    locales_dir: Path | None = None
    # Outgoing messages per second over all chats (Telegram's broadcast limit is about 30);
    # 0 turns the overall limit off, e.g. behind a self-hosted Bot API server.
    telegram_max_rate: float = 30.0
    log_level: str = "INFO"

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
        problems: list[str] = []
        telegram = mode in TELEGRAM_MODES

        def get(name: str, default: str = "") -> str:
            return env.get(name, default).strip()

        token = get("TELEGRAM_BOT_TOKEN")
        if telegram and not token:
            problems.append("TELEGRAM_BOT_TOKEN is missing: ask @BotFather for a token.")
        elif token and not TOKEN_PATTERN.fullmatch(token):
            # Never echo the token itself: it is a credential.
            problems.append(
                "TELEGRAM_BOT_TOKEN does not look like a bot token (expected 123456:ABC..., as @BotFather gives it)."
            )

        api_url = get("TELEGRAM_API_URL", DEFAULT_API_URL).rstrip("/") or DEFAULT_API_URL
        api_parts = urlsplit(api_url)
        if api_parts.scheme not in ("http", "https") or not api_parts.hostname:
            problems.append(f"TELEGRAM_API_URL must be an http(s) URL such as {DEFAULT_API_URL}, got {api_url!r}.")
        official_api = api_parts.hostname == OFFICIAL_API_HOST

        webhook_url = get("WEBHOOK_URL")
        secret = get("WEBHOOK_SECRET")
        if mode == "webhook":
            problems.extend(_check_webhook_url(webhook_url, official_api=official_api))
            problems.extend(_check_secret(secret))

        host = get("HOST", "0.0.0.0") or "0.0.0.0"  # noqa: S104 - see Settings.host
        port = _int(get("PORT", "8080"), "PORT", 1, 65535, problems)

        database_url = get("DATABASE_URL", DEFAULT_DATABASE_URL) or DEFAULT_DATABASE_URL
        scheme = database_url.split(":", 1)[0].lower() if ":" in database_url else ""
        if scheme not in DATABASE_SCHEMES:
            problems.append(
                "DATABASE_URL must start with sqlite:/// or postgresql://, "
                f"got a URL with scheme {scheme or '(none)'!r}."
            )

        admin_ids: list[int] = []
        for part in get("ADMIN_IDS").split(","):
            part = part.strip()
            if not part:
                continue
            try:
                admin_ids.append(int(part))
            except ValueError:
                problems.append(f"ADMIN_IDS must be Telegram user ids separated by commas, got {part!r}.")

        ttl = _int(get("SESSION_TTL_DAYS", "30"), "SESSION_TTL_DAYS", 1, 36500, problems)
        dialogs_dir = _folder(get("DIALOGS_DIR"), "DIALOGS_DIR", problems)
        locales_dir = _folder(get("LOCALES_DIR"), "LOCALES_DIR", problems)

        max_rate = 30.0
        raw_rate = get("TELEGRAM_MAX_RATE", "30")
        try:
            max_rate = float(raw_rate)
            if not 0 <= max_rate <= 10_000:
                raise ValueError(raw_rate)
        except ValueError:
            problems.append(f"TELEGRAM_MAX_RATE must be messages per second (0 = no limit), got {raw_rate!r}.")

        log_level = get("LOG_LEVEL", "INFO").upper() or "INFO"
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            problems.append(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}.")

        if problems:
            raise ConfigError(problems)
        return cls(
            mode=mode,
            telegram_bot_token=token,
            telegram_api_url=api_url,
            webhook_url=webhook_url,
            webhook_secret=secret,
            host=host,
            port=port,
            database_url=database_url,
            admin_ids=tuple(admin_ids),
            session_ttl_days=ttl,
            dialogs_dir=dialogs_dir,
            locales_dir=locales_dir,
            telegram_max_rate=max_rate,
            log_level=log_level,
        )


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


def _int(raw: str, name: str, low: int, high: int, problems: list[str]) -> int:
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name} must be a whole number, got {raw!r}.")
        return low
    if not low <= value <= high:
        problems.append(f"{name} must be between {low} and {high}, got {value}.")
    return value


def _folder(raw: str, name: str, problems: list[str]) -> Path | None:
    if not raw:
        return None
    path = Path(raw)
    if not path.is_dir():
        problems.append(f"{name} is not a folder: {raw!r}.")
        return None
    return path
