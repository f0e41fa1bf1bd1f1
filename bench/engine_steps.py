"""Engine speed: dialog steps per second on one core, whole conversations included.

    .venv/bin/python bench/engine_steps.py [--conversations N] [--runs R]

A step is one `engine.handle(session, event)`. Each conversation is a full cardholder
conversation from /start to the plan, typed and pressed as a user would (Chinese
numerals, a story, yes/no answers), so the diagnosis, the cost estimate and the plan
rendering inputs are all part of the figure. Prints the median of R runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.engine.events import Chose, Event, Said, Start
from bot.runtime import build_engine

SCRIPTS: list[tuple[str, list[str | int]]] = [
    ("zh_CN", [1, 1, "两个月", "两万三", "上个月失业了，一直没找到工作", "没有", "是的", "没有", "不是"]),
    ("en", [1, 2, "45 days", "1.5万", "I forgot the due date, no reminder came", "yes", "no", 1, "yes"]),
    ("zh_CN", [1, 1, "120", "6万", "跳过", "对", "没有", "是", "3", "不是"]),
]
TARGET = 20_000


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
        finished += turn.finished
    return steps, time.process_time() - began, finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    engine, _ = build_engine()
    run_once(engine, 50)  # warm caches and imports
    rates = []
    for _ in range(args.runs):
        steps, seconds, finished = run_once(engine, args.conversations)
        rates.append(steps / seconds)
    print(f"conversations per run: {args.conversations} ({finished} reached the plan), steps per run: {steps}")
    print(f"steps/s per run: {', '.join(f'{r:,.0f}' for r in rates)}")
    median = statistics.median(rates)
    print(
        f"median: {median:,.0f} steps/s on one core (target {TARGET:,}): {'OK' if median >= TARGET else 'BELOW TARGET'}"
    )


if __name__ == "__main__":
    main()
