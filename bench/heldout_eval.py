"""Figures on cases written after the classifiers and parsers were built (tests/heldout/).

Never tune on these: they are the honest measure of how the advisor reads people it
has not met. Prints the cause accuracy (top cause = the writer's label, from the story
alone, as the engine reads it), crisis recall and false alarms, and how typed answers
are read. `make bench-heldout`.
"""

from __future__ import annotations

import sys
from collections import Counter
from decimal import Decimal

import yaml

from bot.engine.answers import Doubt, Kind, Reading, read_day_of_month, read_slot
from bot.engine.crisis import CrisisDetector
from bot.runtime import PROJECT_ROOT, build_engine

HELDOUT = PROJECT_ROOT / "tests" / "heldout"


def _load(name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((HELDOUT / name).read_text(encoding="utf-8"))


def causes() -> None:
    engine, _ = build_engine()
    stories = _load("stories.yaml")["stories"]
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    misses = []
    for story in stories:
        keys = [e.key for e in engine.diagnoser.read_story(story["text"])]
        top = engine.assess({"story": keys})[0].cause.id
        total[story["lang"]] += 1
        if top == story["cause"]:
            right[story["lang"]] += 1
        else:
            misses.append((story["lang"], story["cause"], top))
    for lang in sorted(total):
        print(f"causes {lang}: {right[lang]}/{total[lang]} = {right[lang] / total[lang]:.2f} ranked first")
    print(f"causes all: {sum(right.values())}/{len(stories)} = {sum(right.values()) / len(stories):.2f}")
    confusions = Counter((truth, got) for _, truth, got in misses)
    for (truth, got), count in confusions.most_common(6):
        print(f"  missed {count}x: {truth} read as {got}")


def crisis() -> None:
    engine, _ = build_engine()
    detector = CrisisDetector.from_spec(engine.spec)
    data = _load("crisis.yaml")
    for lang in ("zh", "en"):
        caught = sum(detector.detect(t) for t in data["crisis"][lang])
        alarms = sum(detector.detect(t) for t in data["harmless"][lang])
        print(
            f"crisis {lang}: recall {caught}/{len(data['crisis'][lang])}, "
            f"false alarms {alarms}/{len(data['harmless'][lang])}"
        )


def answers() -> None:
    ok = 0
    rows = _load("answers.yaml")["answers"]
    wrong = []
    for row in rows:
        kind = Kind.DAYS if row["slot"] == "days_overdue" else Kind.MONEY
        got = read_slot(row["text"], kind, Decimal(0), Decimal(100_000_000))
        if row.get("ask_again"):
            good = got is None or isinstance(got, Doubt)
        elif "low" in row:
            good = isinstance(got, Reading) and got.low == Decimal(row["low"]) and got.high == Decimal(row["high"])
        else:
            good = isinstance(got, Reading) and got.value == Decimal(str(row["value"])) and got.low is None
        ok += good
        if not good:
            wrong.append(f"{row['text']!r} -> {got}")
    print(f"typed answers: {ok}/{len(rows)} read as the writer expected")
    for line in wrong:
        print(f"  {line}")


def days_of_month() -> None:
    """The repayment day ("每月15号", "the 21st", "月底"): days_of_month_2.yaml was written
    after the parser's rewrite; days_of_month.yaml guided that rewrite (a regression set)."""
    path = HELDOUT / "days_of_month_2.yaml"
    rows = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else []
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    wrong = []
    for row in rows:
        expected = None if row.get("ask_again") else row["value"]
        got = read_day_of_month(row["text"])
        total[row["lang"]] += 1
        right[row["lang"]] += got == expected
        if got != expected:
            wrong.append(f"{row['text']!r} -> {got} (expected {expected})")
    figures = ", ".join(f"{lang} {right[lang]}/{total[lang]}" for lang in sorted(total))
    print(f"repayment day of the month: {sum(right.values())}/{len(rows)} ({figures})")
    for line in wrong:
        print(f"  {line}")


def main() -> int:
    causes()
    crisis()
    answers()
    days_of_month()
    return 0


if __name__ == "__main__":
    sys.exit(main())
