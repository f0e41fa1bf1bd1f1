"""Conversation tests for operators: `dialogs/tests/*.yaml`, run by `python -m bot test-dialogs`.

A test is what a user sends and what the advisor must then say or where it must be;
it drives the real engine with the real catalogs, so an edit is proven before it ships.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.channels.terminal import render_turn
from bot.engine.commands import parse_command
from bot.engine.engine import Engine
from bot.engine.events import Chose, Event, Said, Start
from bot.engine.turn import Turn
from bot.i18n.catalog import Localizer, normalize_locale
from bot.spec.loader import MarkedList, MarkedMap, read_yaml_file


@dataclass
class Result:
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def run_folder(engine: Engine, localizer: Localizer, folder: Path) -> list[Result]:
    """Run every test in `folder/*.yaml`."""
    results = []
    for path in sorted(folder.glob("*.yaml")):
        doc, problems = read_yaml_file(path, str(path))
        if problems or doc is None:
            results.append(Result(path.name, problems or [f"{path}: empty test file"]))
            continue
        for test in _tests(doc):
            results.append(run_test(engine, localizer, test, str(path)))
    return results


def _tests(doc: Any) -> Iterator[MarkedMap]:
    if isinstance(doc, MarkedMap) and "tests" in doc and isinstance(doc["tests"], MarkedList):
        yield from (t for t in doc["tests"] if isinstance(t, MarkedMap))
    elif isinstance(doc, MarkedMap):
        yield doc
    elif isinstance(doc, MarkedList):
        yield from (t for t in doc if isinstance(t, MarkedMap))


def run_test(engine: Engine, localizer: Localizer, test: MarkedMap, file: str) -> Result:
    """Play one test's steps against the engine; collect every failed expectation."""
    result = Result(str(test.get("name", f"{file}:{test.where.line}")))
    locale = normalize_locale(str(test.get("lang", "zh_CN")))
    session = engine.new_session(locale)
    turn = engine.handle(session, Start(locale))
    steps = test.get("steps")
    if not isinstance(steps, MarkedList):
        result.problems.append(f"{test.where}: a test needs 'steps:'")
        return result
    for step, where in zip(steps, steps.item_where, strict=True):
        if not isinstance(step, MarkedMap):
            result.problems.append(f"{where}: a step is 'say:', 'press:', 'command:', 'start:' or 'expect:'")
            continue
        if "expect" in step:
            result.problems.extend(f"{where}: {p}" for p in _check(engine, localizer, turn, step["expect"]))
            continue
        event = _event(step, turn)
        if event is None:
            result.problems.append(f"{where}: cannot read this step: {dict(step)}")
            continue
        turn = engine.handle(turn.session, event)
    return result


def _event(step: MarkedMap, turn: Turn) -> Event | None:
    if "say" in step:
        return Said(str(step["say"]))
    if "press" in step and isinstance(step["press"], int):
        return Chose(turn.session.version, step["press"] - 1)
    if "command" in step:
        # `command: back` and `command: /lang en` alike; /forget and /stats are not dialog events.
        text = str(step["command"]).strip()
        command = parse_command(text if text.startswith("/") else f"/{text}")
        return command.event(turn.session.locale) if command is not None else None
    if "start" in step:
        return Start(turn.session.locale)
    return None


def _check(engine: Engine, localizer: Localizer, turn: Turn, expect: Any) -> Iterator[str]:
    if not isinstance(expect, MarkedMap):
        yield "'expect:' takes keys: state, flow, contains, not_contains, top_cause, slots, finished"
        return
    session = turn.session
    shown = render_turn(turn, localizer)
    if "state" in expect and session.state != expect["state"]:
        yield f"expected state '{expect['state']}', the conversation is at '{session.state}'"
    if "flow" in expect and session.flow != expect["flow"]:
        yield f"expected flow '{expect['flow']}', the conversation is in '{session.flow}'"
    if "finished" in expect and turn.finished != bool(expect["finished"]):
        yield f"expected finished={expect['finished']}, got {turn.finished}"
    for text in _as_list(expect.get("contains")):
        if str(text) not in shown:
            yield f"expected the reply to contain {text!r}; it was:\n{_indent(shown)}"
    for text in _as_list(expect.get("not_contains")):
        if str(text) in shown:
            yield f"expected the reply not to contain {text!r}"
    if "top_cause" in expect:
        top = engine.assess(session.slots)[0].cause.id
        if top != expect["top_cause"]:
            yield f"expected top cause '{expect['top_cause']}', got '{top}'"
    for name, value in (expect.get("slots") or {}).items():
        if session.slots.get(name) != value:
            yield f"expected slot {name} = {value!r}, got {session.slots.get(name)!r}"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _indent(text: str) -> str:
    return "\n".join("       | " + line for line in text.splitlines()[-25:])
