"""The settings table: each variable written once, documented, and the only reader of the environment."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from bot.config import FIELDS, ConfigError, Settings, terminal_locale
from bot.problems import ProblemsError
from bot.runtime import PROJECT_ROOT, build_advisor
from bot.store._common import chat_hash
from tests.support.cli import run_bot


def test_each_variable_is_one_row_and_documented_for_operators() -> None:
    variables = [field.env for field in FIELDS]
    assert len(variables) == len(set(variables))
    assert {field.attr for field in FIELDS} == {name for name in Settings.__dataclass_fields__ if name != "mode"}
    deploy = (PROJECT_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    undocumented = [name for name in variables if f"`{name}`" not in deploy]
    assert undocumented == [], f"add to the table in docs/deploy.md: {undocumented}"


def test_an_unset_variable_is_its_written_default() -> None:
    written = Settings.from_env("chat", {field.env: field.default for field in FIELDS})
    assert Settings.from_env("chat", {}) == written
    assert (written.port, written.session_ttl_days, written.telegram_max_rate) == (8080, 30, 30.0)


def test_blank_values_mean_the_default() -> None:
    settings = Settings.from_env("chat", {"DATABASE_URL": "  ", "LOG_LEVEL": "", "HOST": ""})
    assert (settings.database_url, settings.log_level, settings.host) == (
        "sqlite:///data/bot.sqlite3",
        "INFO",
        "0.0.0.0",
    )


async def test_the_hash_key_reaches_the_store_and_is_never_shown(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    settings = Settings.from_env("chat", {"EVENT_HASH_KEY": "operator-secret", "DATABASE_URL": f"sqlite:///{database}"})
    assert "operator-secret" not in repr(settings)
    advisor = await build_advisor(settings)
    try:
        await advisor.store.record_event("started", "chat-1", {})
    finally:
        await advisor.store.close()
    with sqlite3.connect(database) as connection:
        (stored,) = connection.execute("SELECT chat_hash FROM events").fetchone()
    assert stored == chat_hash(b"operator-secret", "chat-1")


def test_config_problems_are_the_one_located_problems_error() -> None:
    with pytest.raises(ProblemsError):
        Settings.from_env("chat", {"PORT": "x"})
    assert issubclass(ConfigError, ProblemsError)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh_CN"),
        ({"LC_ALL": "C", "LANG": "en_GB"}, "en"),
        ({}, "zh_CN"),
    ],
)
def test_the_terminal_language(environ: dict[str, str], expected: str) -> None:
    assert terminal_locale(environ) == expected


def test_every_command_refuses_a_broken_environment_with_one_line_each() -> None:
    result = run_bot("validate", env={"PORT": "70000", "LOG_LEVEL": "LOUD"})
    assert result.returncode == 2
    assert result.stderr.count("\n  - ") == 2 and "Traceback" not in result.stderr


def test_nothing_else_reads_the_environment() -> None:
    readers = re.compile(r"os\.environ|os\.getenv|getenv\(")
    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for path in sorted((PROJECT_ROOT / "bot").rglob("*.py"))
        if path.name != "config.py" and readers.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
