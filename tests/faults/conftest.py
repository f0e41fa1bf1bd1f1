"""Fixtures for the fault suite: the real webhook process on a real database, the
stand-in Bot API told to fail, and the figures each test measures.

Databases, webhook processes and the stand-in with a held reply come from the
durability suite (its fixtures are imported here, so they have one home); what only
faults need is in tests/support/fault_support.py and tests/support/tcp_proxy.py.

Every test prints what it measured (duplicates, delays, 503 latency) at the end of the
run, under "fault figures": the closing note of issue 11 quotes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.durability import conftest as durability
from tests.support.durability_support import Bots, FaultyStandIn, SqliteDatabase
from tests.support.fault_support import Figures, Record

# The durability suite's fixtures, one home for both suites (pytest finds a fixture by
# the module attribute that holds it).
standin = durability.standin
content = durability.content
postgres_url = durability.postgres_url
database = durability.database
pg_database = durability.pg_database
bots = durability.bots
pg_bots = durability.pg_bots

FIGURES = pytest.StashKey[Figures]()


@pytest.fixture(autouse=True)
def no_faults_left(standin: FaultyStandIn) -> Iterator[None]:
    """Each test starts and ends with a stand-in that fails nothing."""
    standin.clear_faults()
    yield
    standin.clear_faults()


@pytest.fixture
def sqlite_database(tmp_path: Path) -> SqliteDatabase:
    """A fresh SQLite file (for faults that do not depend on the backend)."""
    return SqliteDatabase(tmp_path / "data" / "bot.sqlite3")


@pytest.fixture
def sqlite_bots(standin: FaultyStandIn, sqlite_database: SqliteDatabase, tmp_path: Path) -> Iterator[Bots]:
    """Webhook processes on `sqlite_database`, stopped at teardown."""
    launcher = Bots(standin, sqlite_database, tmp_path)
    yield launcher
    launcher.close()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Record:
    """`figures(name, value)`: keep a measurement for the end-of-run table (and the
    test's JUnit properties)."""
    table = request.config.stash.setdefault(FIGURES, Figures())

    def record(name: str, value: object) -> None:
        table.add(request.node.name, name, value)
        request.node.user_properties.append((name, value))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    table = config.stash.get(FIGURES, None)
    if table is None or not table.rows:
        return
    terminalreporter.section("fault figures")
    for test, name, value in table.rows:
        terminalreporter.write_line(f"{test}: {name} = {value}")
