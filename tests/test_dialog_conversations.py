"""The operators' conversation tests in dialogs/tests/, each as its own pytest case."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.dialogtests import _tests, run_test
from bot.engine.engine import Engine
from bot.i18n.catalog import Localizer
from bot.runtime import PROJECT_ROOT
from bot.spec.loader import MarkedMap, read_yaml
from tests.support.cli import run_bot

TESTS_DIR = PROJECT_ROOT / "dialogs" / "tests"


def _cases() -> list[tuple[str, MarkedMap]]:
    cases = []
    for path in sorted(TESTS_DIR.glob("*.yaml")):
        doc, problems = read_yaml(path.read_text(encoding="utf-8"), str(path))
        assert not problems, problems
        cases.extend((f"{path.name}:{test.where.line}", test) for test in _tests(doc))
    return cases


CASES = _cases()


def test_there_is_a_conversation_per_cause_and_language() -> None:
    names = " ".join(str(test.get("name", "")) for _, test in CASES)
    assert len(CASES) >= 12
    for cause in ("unstable_income", "missed_reminder", "impulsive_spending", "other_debts", "poor_money_management"):
        langs = {
            str(t.get("lang"))
            for _, t in CASES
            if any(
                isinstance(s, dict) and isinstance(s.get("expect"), dict) and s["expect"].get("top_cause") == cause
                for s in t.get("steps", [])
            )
        }
        assert {"zh_CN", "en"} <= langs, (cause, langs, names[:80])


@pytest.mark.parametrize(("where", "test"), CASES, ids=[where for where, _ in CASES])
def test_conversation(engine: Engine, localizer: Localizer, where: str, test: MarkedMap) -> None:
    result = run_test(engine, localizer, test, where)
    assert result.passed, "\n".join(result.problems)


def test_a_failing_conversation_test_is_reported_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "name: expects the wrong state\nlang: en\nsteps:\n  - press: 1\n  - expect: {state: amount}\n",
        encoding="utf-8",
    )
    result = run_bot("test-dialogs", "--tests", str(tmp_path))
    assert result.returncode == 1
    assert "FAIL expects the wrong state" in result.stdout
    assert "broken.yaml:5:" in result.stdout and "expected state 'amount'" in result.stdout
    assert "0 passed, 1 failed" in result.stdout
