"""Shared fixtures: the real bundled dialogs and catalogs, and copies to break."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.engine.engine import Engine
from bot.i18n.catalog import Localizer
from bot.runtime import PROJECT_ROOT, build_engine

DIALOGS = PROJECT_ROOT / "dialogs"
LOCALES = PROJECT_ROOT / "locales"


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


def run_bot(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` as an operator runs it, from the project folder."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
