"""Where things are and how they are put together: the one place that wires the app.

Also what every long-running mode shares whatever its channel: the logging setup and
the loop that deletes idle conversations.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Settings
from bot.conversations import Advisor
from bot.engine.engine import Engine
from bot.i18n.catalog import Localizer
from bot.spec.loader import load_dialogs
from bot.store import open_store

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PURGE_EVERY = timedelta(hours=1)


def dialogs_dir(explicit: Path | str | None = None) -> Path:
    """The dialogs folder: as given (a command's argument or DIALOGS_DIR), else the bundled `dialogs/`."""
    return Path(explicit or PROJECT_ROOT / "dialogs")


def locales_dir(explicit: Path | str | None = None) -> Path:
    """The catalogs folder: as given (LOCALES_DIR), else the bundled `locales/`."""
    return Path(explicit or PROJECT_ROOT / "locales")


def build_engine(dialogs: Path | str | None = None, locales: Path | str | None = None) -> tuple[Engine, Localizer]:
    """Load dialogs and catalogs; raises `SpecError` when the dialogs are broken."""
    localizer = Localizer.load(locales_dir(locales))
    spec = load_dialogs(dialogs_dir(dialogs))
    return Engine(spec, localizer.locales, localizer.translations_of), localizer


def assemble_advisor(settings: Settings) -> Advisor:
    """Everything a channel needs; the store is not connected yet (`await advisor.store.open()`)."""
    engine, localizer = build_engine(settings.dialogs_dir, settings.locales_dir)
    return Advisor(engine, open_store(settings.database_url, hash_key=settings.event_hash_key), localizer)


async def build_advisor(settings: Settings) -> Advisor:
    """Everything a channel needs, with the store opened and migrated."""
    advisor = assemble_advisor(settings)
    await advisor.store.open()
    return advisor


def configure_logging(level: str) -> None:
    """Log lines without secrets: httpx would log every request URL, token included."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # transitions narrates every state change at INFO: noise at the scale of a busy bot.
    logging.getLogger("transitions").setLevel(logging.WARNING)


async def purge_forever(advisor: Advisor, ttl_days: int) -> None:
    """Delete conversations idle for `ttl_days`, now and every hour (privacy by default)."""
    while True:
        try:
            idle_since = datetime.now(UTC) - timedelta(days=ttl_days)
            purged = await advisor.store.purge_idle(idle_since)
            if purged:
                log.info("purged %d idle conversations", purged)
        except Exception:
            log.warning("purging idle conversations failed; will try again", exc_info=True)
        await asyncio.sleep(PURGE_EVERY.total_seconds())
