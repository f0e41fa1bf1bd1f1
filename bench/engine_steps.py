"""Engine speed: dialog steps per second on one core, whole conversations included.

    .venv/bin/python -m bench.engine_steps [--conversations N] [--runs R]

A step is one `engine.handle(session, event)`, with the `transitions` machine doing the
moving: real transition conditions and `on_enter` callbacks on every state passed.
Each conversation is a full cardholder conversation from /start to the plan, typed and
pressed as a user would (Chinese numerals, a story, yes/no answers), so the diagnosis,
the cost estimate and the plan rendering inputs are all part of the figure. Prints
the median of R runs twice: for the whole engine, and for the same dialogs without
the learned readers (the dialog machine alone, which issue 8's 10,000 target is about).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

from bot.engine.engine import Engine
from bot.engine.events import Chose, Event, Said, Start
from bot.runtime import build_engine

SCRIPTS: list[tuple[str, list[str | int]]] = [
    ("zh_CN", [1, 1, "两个月", "两万三", "上个月失业了，一直没找到工作", "没有", "是的", "没有", "不是"]),
    ("en", [1, 2, "45 days", "1.5万", "I forgot the due date, no reminder came", "yes", "no", 1, "yes"]),
    ("zh_CN", [1, 1, "120", "6万", "跳过", "对", "没有", "是", "3", "不是"]),
]
# Issue 8: with the machine running the dialog (real conditions and on_enter callbacks).
TARGET = 10_000


def run_once(engine: object, conversations: int) -> tuple[int, float, int]:
    from bot.engine.engine import Engine

    assert isinstance(engine, Engine)
    steps = finished = 0
    began = time.process_time()  # CPU time of this process: other load on the machine does not count
    for n in range(conversations):
        locale, script = SCRIPTS[n % len(SCRIPTS)]
        turn = engine.handle(engine.new_session(locale), Start(locale))
        steps += 1
        for item in script:
            event: Event = Chose(turn.session.version, item - 1) if isinstance(item, int) else Said(item)
            turn = engine.handle(turn.session, event)
            steps += 1
        finished += "plan" in turn.milestones
    return steps, time.process_time() - began, finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    engine, localizer = build_engine()
    # The same dialogs without the learned readers (no cause or crisis examples): what the
    # dialog machine itself costs, apart from reading people's words.
    spec = engine.spec
    bare = replace(
        spec,
        causes=tuple(replace(cause, examples={}) for cause in spec.causes),
        crisis=replace(spec.crisis, examples={}),
    )
    machine_only = Engine(bare, localizer.locales, localizer.translations_of)
    for name, subject in (("whole engine (with the classifiers)", engine), ("dialog machine alone", machine_only)):
        run_once(subject, 50)  # warm caches and imports
        rates = []
        for _ in range(args.runs):
            steps, seconds, finished = run_once(subject, args.conversations)
            rates.append(steps / seconds)
        median = statistics.median(rates)
        print(f"{name}: {args.conversations} conversations per run ({finished} reached the plan), {steps} steps")
        print(f"  steps/s per run: {', '.join(f'{r:,.0f}' for r in rates)}")
        print(f"  median: {median:,.0f} steps/s on one core (machine target {TARGET:,})")


if __name__ == "__main__":
    main()
