"""Loading dialogs: the shipped ones load; broken ones are explained with file:line:column."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bot.runtime import PROJECT_ROOT
from bot.spec.loader import SpecError, load_dialogs
from tests.support.cli import DIALOGS, run_bot


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _problems(folder: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_dialogs(folder)
    return caught.value.problems


def test_shipped_dialogs_load() -> None:
    spec = load_dialogs(DIALOGS)
    assert {"start", "cardholder", "staff"} <= set(spec.flows)
    assert [c.id for c in spec.causes] == [
        "unstable_income",
        "missed_reminder",
        "impulsive_spending",
        "other_debts",
        "poor_money_management",
    ]
    assert [c.prior for c in spec.causes] == [0.30, 0.25, 0.20, 0.15, 0.10]
    assert spec.entry_flow == "start"


def test_yaml_syntax_error_names_file_and_line(dialogs_copy: Path) -> None:
    target = dialogs_copy / "cardholder.yaml"
    line = _line_of(target, "  days:")
    _replace(target, "  days:\n", "  days:\n   - broken: [unclosed\n")
    problems = _problems(dialogs_copy)
    found = [
        int(m.group(1)) for p in problems if (m := re.search(r"cardholder\.yaml:(\d+):\d+: this is not valid YAML", p))
    ]
    assert found and line <= found[0] <= line + 3, problems
    # one broken file is reported alone, not drowned in its consequences elsewhere
    assert len(problems) == 1


def test_unknown_slot_in_condition_is_located(dialogs_copy: Path) -> None:
    target = dialogs_copy / "cardholder.yaml"
    _replace(
        target,
        "    next: amount\n",
        '    next:\n      - {when: "dayz_overdue > 90", to: amount}\n      - {to: amount}\n',
    )
    line = _line_of(target, "dayz_overdue")
    problems = _problems(dialogs_copy)
    # the branch's own line, so an operator lands on the typo
    located = [p for p in problems if re.search(rf"cardholder\.yaml:{line}:\d+: .*unknown slot 'dayz_overdue'", p)]
    assert len(located) == 1, problems


def test_bad_condition_points_at_the_column(dialogs_copy: Path) -> None:
    target = dialogs_copy / "cardholder.yaml"
    _replace(
        target,
        "    next: amount\n",
        '    next:\n      - {when: "days_overdue >> 90", to: amount}\n      - {to: amount}\n',
    )
    line = _line_of(target, "days_overdue >> 90")
    problems = _problems(dialogs_copy)
    assert any(p.startswith(f"cardholder.yaml:{line}:") or f"/cardholder.yaml:{line}:" in p for p in problems), problems
    assert any("cannot read the condition" in p for p in problems)


def test_unknown_state_unreachable_state_and_dead_end(dialogs_copy: Path) -> None:
    target = dialogs_copy / "cardholder.yaml"
    _replace(target, "    next: amount\n", "    next: amont\n")
    text = target.read_text(encoding="utf-8") + (
        '  orphan:\n    say: "Nobody comes here."\n    next: amount\n  stuck:\n    say: "No way on."\n'
    )
    target.write_text(text, encoding="utf-8")
    problems = "\n".join(_problems(dialogs_copy))
    assert "goes to unknown state 'amont'" in problems
    assert re.search(r"cardholder\.yaml:\d+:\d+: state 'orphan' cannot be reached", problems)
    assert re.search(r"cardholder\.yaml:\d+:\d+: state 'stuck' is a dead end", problems)


def test_duplicate_and_unknown_keys(dialogs_copy: Path) -> None:
    target = dialogs_copy / "cardholder.yaml"
    _replace(target, "    slot: days_overdue\n", "    slot: days_overdue\n    slot: days_overdue\n    colour: red\n")
    problems = "\n".join(_problems(dialogs_copy))
    assert "'slot' is written twice" in problems
    assert "unknown key 'colour'" in problems


def test_priors_must_add_up_and_exist(dialogs_copy: Path) -> None:
    _replace(dialogs_copy / "causes.yaml", "prior: 0.30", "prior: 0.50")
    problems = "\n".join(_problems(dialogs_copy))
    assert "priors add up to 1.2000" in problems


def test_missing_engine_message_is_named(dialogs_copy: Path) -> None:
    target = dialogs_copy / "messages.yaml"
    lines = [
        line for line in target.read_text(encoding="utf-8").splitlines() if not line.strip().startswith("stale_button")
    ]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = "\n".join(_problems(dialogs_copy))
    assert "the text 'stale_button' is missing" in problems


def test_python_tags_are_refused_not_run(dialogs_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (dialogs_copy / "evil.yaml").write_text(
        f"messages:\n  x: !!python/object/apply:os.system ['touch {marker}']\n", encoding="utf-8"
    )
    problems = "\n".join(_problems(dialogs_copy))
    assert "evil.yaml:2:" in problems and "not valid YAML" in problems
    assert not marker.exists()


def _validate(*args: str) -> subprocess.CompletedProcess[str]:
    return run_bot("validate", *args)


def test_validate_command_accepts_the_shipped_dialogs() -> None:
    result = _validate()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 3 flows")


def test_validate_command_fails_with_locations_on_a_broken_copy(dialogs_copy: Path) -> None:
    _replace(dialogs_copy / "cardholder.yaml", "    slot: days_overdue\n", "    slot: days_overdu\n")
    result = _validate(str(dialogs_copy))
    assert result.returncode == 1
    assert re.search(
        r"cardholder\.yaml:\d+:\d+: state 'days' keeps its answer in unknown slot 'days_overdu'", result.stderr
    )


def test_validate_command_reports_a_missing_translation(tmp_path: Path) -> None:
    import shutil

    locales = tmp_path / "locales"
    shutil.copytree(PROJECT_ROOT / "locales", locales)
    po = locales / "zh_CN" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8")
    msgid = 'msgid "Credit card"\nmsgstr "'
    assert msgid in text
    po.write_text(text.replace(msgid, 'msgid "Credit card"\nmsgstr ""\n#msgstr "'), encoding="utf-8")
    result = _validate("--locales", str(locales))
    assert result.returncode == 1
    assert re.search(r"cardholder\.yaml:\d+:\d+: no zh_CN translation for 'Credit card'", result.stderr), result.stderr
