"""Where things are and how they are put together: the one place that wires the app."""

from __future__ import annotations

import os
from pathlib import Path

from bot.conversations import Advisor
from bot.engine.engine import Engine
from bot.i18n.catalog import Localizer
from bot.spec.loader import load_dialogs
from bot.store import open_store

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "sqlite:///data/bot.sqlite3"


def dialogs_dir(explicit: Path | str | None = None) -> Path:
    """The dialogs folder: as given, else $DIALOGS_DIR, else the bundled `dialogs/`."""
    return Path(explicit or os.environ.get("DIALOGS_DIR") or PROJECT_ROOT / "dialogs")


def locales_dir(explicit: Path | str | None = None) -> Path:
    """The catalogs folder: as given, else $LOCALES_DIR, else the bundled `locales/`."""
    return Path(explicit or os.environ.get("LOCALES_DIR") or PROJECT_ROOT / "locales")


def build_engine(dialogs: Path | str | None = None, locales: Path | str | None = None) -> tuple[Engine, Localizer]:
    """Load dialogs and catalogs; raises `SpecError` when the dialogs are broken."""
    localizer = Localizer.load(locales_dir(locales))
    spec = load_dialogs(dialogs_dir(dialogs))
    return Engine(spec, localizer.locales, localizer.translations_of), localizer


async def build_advisor(
    dialogs: Path | str | None = None,
    locales: Path | str | None = None,
    database_url: str | None = None,
) -> Advisor:
    """Everything a channel needs, with the store opened and migrated."""
    engine, localizer = build_engine(dialogs, locales)
    store = open_store(database_url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    await store.open()
    return Advisor(engine, store, localizer)
