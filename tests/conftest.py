"""Shared fixtures: the real bundled dialogs and catalogs, and copies to break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.engine.engine import Engine
from bot.i18n.catalog import Localizer
from bot.runtime import build_engine
from tests.support.cli import DIALOGS, LOCALES


@pytest.fixture(scope="session")
def engine_and_localizer() -> tuple[Engine, Localizer]:
    return build_engine(DIALOGS, LOCALES)


@pytest.fixture(scope="session")
def engine(engine_and_localizer: tuple[Engine, Localizer]) -> Engine:
    return engine_and_localizer[0]


@pytest.fixture(scope="session")
def localizer(engine_and_localizer: tuple[Engine, Localizer]) -> Localizer:
    return engine_and_localizer[1]


@pytest.fixture
def dialogs_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled dialogs (without the conversation tests)."""
    target = tmp_path / "dialogs"
    shutil.copytree(DIALOGS, target, ignore=shutil.ignore_patterns("tests"))
    return target
