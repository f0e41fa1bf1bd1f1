"""Loading dialogs: the shipped ones load; broken ones are explained with file:line:column."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from bot.runtime import PROJECT_ROOT
from bot.spec.loader import MAX_YAML_BYTES, MAX_YAML_DEPTH, SpecError, load_dialogs, read_yaml, read_yaml_file
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
    assert result.stdout.startswith("OK: 4 flows")


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


# --- bounds: what YAML a dialog may be -------------------------------------------------

# The "billion laughs": nine aliases of nine aliases... 9**9 (387 million) items written
# in ten lines. Expanded, `validate` used 2.9 GB before it died.
ALIAS_BOMB = (
    "        synonyms: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"        x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
    + "        synonyms2: *l9\n"
)


def _named(problems: list[str], folder: Path, file: str) -> list[str]:
    """The problems of `file` in `folder`, named relative to the folder."""
    return [p.removeprefix(f"{folder}/") for p in problems if p.removeprefix(f"{folder}/").startswith(f"{file}:")]


def _bomb_in_synonyms(folder: Path) -> int:
    """Put the bomb into the first option's synonyms; returns the line of the first anchor."""
    target = folder / "cardholder.yaml"
    old = "        synonyms: [信用卡, 银行卡, card, credit, cc]\n"
    line = _line_of(target, old.strip())
    _replace(target, old, ALIAS_BOMB)
    return line


def test_alias_bomb_is_refused_fast_with_small_memory(dialogs_copy: Path) -> None:
    line = _bomb_in_synonyms(dialogs_copy)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        problems = _named(_problems(dialogs_copy), dialogs_copy, "cardholder.yaml")
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    started = time.perf_counter()
    _, alone = read_yaml_file(dialogs_copy / "cardholder.yaml", "cardholder.yaml")
    file_seconds = time.perf_counter() - started
    print(
        f"alias bomb: the file refused in {file_seconds * 1000:.1f} ms; the whole folder in {seconds:.2f} s "
        f"with a peak of {peak / 1e6:.1f} MB traced"
    )
    assert alone == problems
    # The first '&' is refused, located, with the remedy; nothing is expanded.
    assert problems == [
        f"cardholder.yaml:{line}:19: YAML anchors and aliases ('&l0') are not accepted in dialogs: "
        "write the list out in full"
    ]
    assert peak < 50 * 1024 * 1024


def test_validate_refuses_the_alias_bomb(dialogs_copy: Path) -> None:
    line = _bomb_in_synonyms(dialogs_copy)
    # Measured in a process of its own: the peak memory of `validate` and nothing else.
    probe = (
        "import resource, subprocess, sys\n"
        "command = [sys.executable, '-m', 'bot', 'validate', sys.argv[1]]\n"
        "result = subprocess.run(command, capture_output=True, text=True)\n"
        "sys.stderr.write(result.stderr)\n"
        "print(result.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(dialogs_copy)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )
    code, peak_kb = (int(word) for word in result.stdout.split())
    print(f"validate with the alias bomb: exit {code}, peak RSS {peak_kb / 1024:.0f} MB")
    assert code == 1
    assert re.search(
        rf"cardholder\.yaml:{line}:19: YAML anchors and aliases .* write the list out in full", result.stderr
    )
    assert "Traceback" not in result.stderr
    assert peak_kb < 1024 * 1024  # the bomb took 2.9 GB; loading the bot takes a fraction of 1 GB


@pytest.mark.parametrize(
    ("yaml_text", "where"),
    [
        ("messages:\n  a: &greeting Hello\n  b: *greeting\n", "2:6"),  # a plain anchor, not only bombs
        ("messages:\n  a: [x]\n  b: *nothing\n", "3:6"),  # an alias without its anchor
        ("settings:\n  base: &b {entry_flow: start}\n  <<: *b\n", "2:9"),  # merge keys need aliases
    ],
)
def test_anchors_and_aliases_are_refused_where_written(dialogs_copy: Path, yaml_text: str, where: str) -> None:
    (dialogs_copy / "extra.yaml").write_text(yaml_text, encoding="utf-8")
    problems = _named(_problems(dialogs_copy), dialogs_copy, "extra.yaml")
    assert len(problems) == 1 and problems[0].startswith(f"extra.yaml:{where}: YAML anchors and aliases"), problems


@pytest.mark.parametrize(
    ("deep", "where"),
    [
        ("messages:\n  deep: " + "[" * 10_000 + "x" + "]" * 10_000 + "\n", "2:71"),
        ("messages:\n  deep: " + "{a: " * 10_000 + "x" + "}" * 10_000 + "\n", "2:254"),
        ("- " * 10_000 + "x\n", "1:129"),
    ],
)
def test_ten_thousand_levels_deep_is_a_problem_not_a_crash(dialogs_copy: Path, deep: str, where: str) -> None:
    (dialogs_copy / "deep.yaml").write_text(deep, encoding="utf-8")
    problems = _named(_problems(dialogs_copy), dialogs_copy, "deep.yaml")
    assert problems == [
        f"deep.yaml:{where}: this is nested more than {MAX_YAML_DEPTH} levels deep (a dialog needs a handful): "
        "check the brackets and the indentation"
    ]


def test_a_file_over_a_megabyte_is_refused_unread(dialogs_copy: Path) -> None:
    big = dialogs_copy / "big.yaml"
    big.write_text("messages:\n" + "".join(f"  m{i}: {'x' * 100}\n" for i in range(12_000)), encoding="utf-8")
    assert big.stat().st_size > MAX_YAML_BYTES
    problems = _named(_problems(dialogs_copy), dialogs_copy, "big.yaml")
    assert problems == [
        "big.yaml:1:1: this file is over 1 MB; a dialog file is a few tens of kB: split it into several files"
    ]


def test_the_bounds_hold_for_texts_given_directly() -> None:
    # The Babel extractor and the conversation tests read through the same function.
    assert read_yaml(io.StringIO("a: " + "x" * (MAX_YAML_BYTES + 1)), "s.yaml")[1][0].startswith(
        "s.yaml:1:1: this file is over"
    )
    assert read_yaml("a: &x 1\nb: *x\n", "s.yaml") == (
        None,
        ["s.yaml:1:4: YAML anchors and aliases ('&x') are not accepted in dialogs: write the list out in full"],
    )
    data, problems = read_yaml("a: [1, {b: [2, 3]}]\n", "s.yaml")
    assert data == {"a": [1, {"b": [2, 3]}]} and problems == []


def test_no_other_module_of_the_bot_reads_yaml_itself() -> None:
    readers = [
        str(path.relative_to(PROJECT_ROOT))
        for path in (PROJECT_ROOT / "bot").rglob("*.py")
        if re.search(r"^\s*(import yaml|from yaml)", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert readers == ["bot/spec/loader.py"]
