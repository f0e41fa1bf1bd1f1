"""The cause classifier: held-out accuracy, the operators' examples files, `eval-causes`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.engine.classifier import CrossValidation, cross_validate, train
from bot.engine.diagnosis import Diagnoser
from bot.engine.engine import Engine
from bot.spec.examples import MIN_EXAMPLES
from bot.spec.loader import SpecError, load_dialogs
from tests.support.cli import run_bot

CAUSES = ["unstable_income", "missed_reminder", "impulsive_spending", "other_debts", "poor_money_management"]


@pytest.fixture(scope="module")
def held_out(engine: Engine) -> CrossValidation:
    """Every example classified by a model that never saw it (5 stratified folds)."""
    return cross_validate({cause.id: cause.examples for cause in engine.spec.causes}, folds=5)


def test_the_bundled_examples_are_enough_for_every_cause_and_language(engine: Engine) -> None:
    for cause in engine.spec.causes:
        assert set(cause.examples) == {"zh", "en"}, cause.id
        for lang, texts in cause.examples.items():
            assert len(texts) >= 80, (cause.id, lang, len(texts))


@pytest.mark.parametrize(("lang", "floor"), [("zh", 0.78), ("en", 0.65)])
def test_held_out_stories_mostly_rank_their_own_cause_first(held_out: CrossValidation, lang: str, floor: float) -> None:
    # Measured: 0.83 zh, 0.69 en; a chance guess would be 0.20.
    assert held_out.accuracy(lang) >= floor


def test_no_cause_is_neglected_in_held_out_stories(held_out: CrossValidation) -> None:
    matrix = held_out.confusion()
    assert held_out.causes == tuple(CAUSES)
    for i, row in enumerate(matrix):
        assert sum(row) == held_out.labels.count(CAUSES[i])
        assert row[i] / sum(row) >= 0.6, (CAUSES[i], row)  # recall of each cause


def test_confident_readings_are_right_more_often(held_out: CrossValidation) -> None:
    # What the diagnosis thresholds rely on: the higher the top probability, the more often it is right.
    _, right_at_half = held_out.above(0.5)
    _, right_when_sure = held_out.above(0.9)
    assert right_when_sure > right_at_half > held_out.accuracy()
    assert right_when_sure >= 0.9
    assert held_out.calibration_error() < 0.15


def test_the_same_examples_train_once_per_process(engine: Engine) -> None:
    examples = {cause.id: cause.examples for cause in engine.spec.causes}
    assert train(examples) is engine.diagnoser.classifier
    assert Diagnoser(engine.spec.causes).classifier is engine.diagnoser.classifier


def test_no_examples_means_no_classifier_and_no_problem(dialogs_copy: Path) -> None:
    for path in (dialogs_copy / "examples").glob("*.yaml"):
        path.unlink()
    spec = load_dialogs(dialogs_copy)
    assert Diagnoser(spec.causes).classifier is None


# ------------------------------------------------------------------ examples files


def _problems(folder: Path) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_dialogs(folder)
    return err.value.problems


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_an_unknown_cause_is_located(dialogs_copy: Path) -> None:
    path = dialogs_copy / "examples" / "other_debts.yaml"
    _rewrite(path, "cause: other_debts", "cause: other_debt")
    problems = _problems(dialogs_copy)
    line = _line_of(path, "cause: other_debt")
    assert any(re.search(rf"other_debts\.yaml:{line}:8: unknown cause 'other_debt'", p) for p in problems), problems
    # …and the cause it should have named now has no examples at all
    assert any("other_debts.yaml:1:1: cause 'other_debts' has no examples" in p for p in problems), problems


def test_an_empty_and_a_duplicate_example_are_located(dialogs_copy: Path) -> None:
    path = dialogs_copy / "examples" / "missed_reminder.yaml"
    first = '    - "换了新号码，银行短信一直发到旧手机上"\n'
    _rewrite(path, first, first + '    - ""\n' + '    - "换了新号码，银行短信一直发到旧手机上 "\n')
    problems = _problems(dialogs_copy)
    line = _line_of(path, "换了新号码")
    assert f"{path.name}:{line + 1}:7: an empty example" in "\n".join(problems), problems
    duplicate = [p for p in problems if "written twice" in p]
    assert len(duplicate) == 1 and f":{line + 2}:7:" in duplicate[0] and f":{line}:7" in duplicate[0], problems


def test_too_few_examples_in_a_language_is_located(dialogs_copy: Path) -> None:
    path = dialogs_copy / "examples" / "impulsive_spending.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    en_at = next(i for i, line in enumerate(lines) if line.strip() == "en:")
    kept = lines[: en_at + 1 + MIN_EXAMPLES - 1]  # one example short in English
    path.write_text("".join(kept), encoding="utf-8")
    problems = _problems(dialogs_copy)
    expected = (
        f"impulsive_spending.yaml:{en_at + 1}:3: cause 'impulsive_spending' has {MIN_EXAMPLES - 1} example(s) in 'en'"
    )
    assert any(expected in p for p in problems), problems


def test_a_mistyped_key_in_the_classifier_block_is_located(dialogs_copy: Path) -> None:
    path = dialogs_copy / "causes.yaml"
    _rewrite(
        path, "      fills: {income_stable: false}\n    evidence:", "      fill: {income_stable: false}\n    evidence:"
    )
    problems = _problems(dialogs_copy)
    line = _line_of(path, "fill: {income_stable")
    assert any(f"causes.yaml:{line}:7: unknown key 'fill' in 'classifier' of cause" in p for p in problems), problems


# ------------------------------------------------------------------ eval-causes


def test_eval_causes_prints_accuracy_per_language_and_a_confusion_matrix() -> None:
    result = run_bot("eval-causes", "--folds", "3", "--min-accuracy", "0.99")
    out = result.stdout
    assert re.match(r"Cross-validated \(3 folds, stratified\), \d+ examples\n", out), out
    accuracy = dict(re.findall(r"^  (zh|en|all)\s+(0\.\d{3})", out, re.MULTILINE))
    assert set(accuracy) == {"zh", "en", "all"}
    for lang in ("zh", "en", "all"):
        assert "confusion matrix (" + lang + ")" in out
    for n, cause in enumerate(CAUSES, 1):
        rows = re.findall(rf"^{n} {cause}\s+((?:\d+\s+){{5}})recall (\d\.\d\d)$", out, re.MULTILINE)
        assert len(rows) == 3, (cause, out)  # zh, en, all
    # The floor: a language below it fails the command, as `make test` relies on.
    assert result.returncode == 1
    assert "below the floor 0.990" in result.stderr
