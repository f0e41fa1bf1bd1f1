"""Checks that need the whole dialog folder: references, reachability, dead ends, priors."""

from __future__ import annotations

from collections.abc import Iterator

from bot.spec.conditions import Condition
from bot.spec.model import DialogSpec, Flow, SlotType, State, Where, placeholders

PRIOR_TOLERANCE = 1e-6


def check_spec(spec: DialogSpec, first_file: str) -> list[str]:
    """Every problem with `spec` as a `file:line:column: message` line."""
    slot_names = {name for flow in spec.flows.values() for name in flow.slots}
    known = _derived_names(spec) | slot_names
    problems: list[str] = []
    for flow in spec.flows.values():
        problems.extend(_check_flow(flow, spec, known))
    problems.extend(_check_causes(spec, slot_names, known, first_file))
    if spec.entry_flow not in spec.flows:
        problems.append(
            f"{first_file}:1:1: the entry flow '{spec.entry_flow}' does not exist; "
            f"flows: {', '.join(sorted(spec.flows)) or 'none'}"
        )
    from bot.spec.loader import REQUIRED_MESSAGES

    for key in REQUIRED_MESSAGES:
        if key not in spec.messages:
            problems.append(f"{first_file}:1:1: messages: the text '{key}' is missing; add it under messages:")
    return problems


def _derived_names(spec: DialogSpec) -> set[str]:
    from bot.spec.loader import DERIVED_NAMES

    return set(DERIVED_NAMES) | {f"p_{cause.id}" for cause in spec.causes} | {"hotline"}


def _check_flow(flow: Flow, spec: DialogSpec, known: set[str]) -> Iterator[str]:
    if flow.start not in flow.states:
        yield f"{flow.where}: flow '{flow.name}' starts at '{flow.start}', which is not one of its states"
    for state in flow.states.values():
        yield from _check_state(state, flow, spec, known)
    reachable = _reachable(flow)
    for state in flow.states.values():
        if state.name not in reachable:
            yield (
                f"{state.where}: state '{state.name}' cannot be reached from '{flow.start}'; "
                "point a 'next' at it or remove it"
            )


def _check_state(state: State, flow: Flow, spec: DialogSpec, known: set[str]) -> Iterator[str]:
    where = state.where
    if state.slot is not None:
        slot = flow.slots.get(state.slot)
        if slot is None:
            yield (
                f"{where}: state '{state.name}' keeps its answer in unknown slot '{state.slot}'; "
                f"declare it under slots: (declared: {', '.join(sorted(flow.slots)) or 'none'})"
            )
        elif slot.type is SlotType.CHOICE and not state.options:
            yield f"{where}: state '{state.name}' asks a choice but offers no options"
    for condition in _conditions(state):
        yield from _check_names(condition, known, where, f"state '{state.name}'")
    for text in [t.text for t in state.say] + [p.text for p in state.phrases]:
        yield from _check_placeholders(text, known, where)
    if state.end:
        return
    if not state.branches:
        yield f"{where}: state '{state.name}' is a dead end: give it 'next:' or 'end: true'"
    elif state.branches[-1].when is not None:
        yield (
            f"{state.branches[-1].where}: the last 'next' of state '{state.name}' has a condition; "
            "add a final {to: …} without 'when' so the conversation can always go on"
        )
    for branch in state.branches:
        if branch.target.startswith("@"):
            if branch.target[1:] not in spec.flows:
                yield f"{branch.where}: there is no flow '{branch.target[1:]}'"
        elif branch.target not in flow.states:
            yield (
                f"{branch.where}: state '{state.name}' goes to unknown state '{branch.target}'; "
                f"states: {', '.join(sorted(flow.states))}"
            )


def _conditions(state: State) -> Iterator[Condition]:
    candidates = [state.when, *(t.when for t in state.say), *(p.when for p in state.phrases)]
    candidates += [b.when for b in state.branches]
    yield from (c for c in candidates if c is not None)


def _check_names(condition: Condition, known: set[str], where: Where, what: str) -> Iterator[str]:
    for name in sorted(condition.names - known):
        yield (
            f"{where}: the condition {condition.source!r} in {what} uses unknown slot '{name}'; "
            "use a declared slot name"
        )


def _check_placeholders(text: str, known: set[str], where: Where) -> Iterator[str]:
    try:
        names = placeholders(text)
    except ValueError as err:
        yield f"{where}: the text {text[:40]!r}… has a broken {{placeholder}}: {err}"
        return
    for name in sorted(names - known):
        yield f"{where}: the text {text[:40]!r}… uses unknown value '{{{name}}}'"


def _reachable(flow: Flow) -> set[str]:
    seen: set[str] = set()
    todo = [flow.start]
    while todo:
        name = todo.pop()
        if name in seen or name not in flow.states:
            continue
        seen.add(name)
        todo.extend(b.target for b in flow.states[name].branches if not b.target.startswith("@"))
    return seen


def _check_causes(spec: DialogSpec, slot_names: set[str], known: set[str], first_file: str) -> Iterator[str]:
    if not spec.causes:
        yield f"{first_file}:1:1: no causes: add a causes: file with the causes and their priors"
        return
    total = sum(cause.prior for cause in spec.causes)
    if abs(total - 1) > PRIOR_TOLERANCE:
        yield f"{first_file}:1:1: the causes' priors add up to {total:.4f}; they must add up to 1"
    for cause in spec.causes:
        if cause.prior <= 0:
            yield f"{first_file}:1:1: cause '{cause.id}' has no prior; give it 'prior:' between 0 and 1"
        for evidence in cause.evidence:
            where = evidence.where or Where(first_file, 1, 1)
            if evidence.when is not None:
                yield from _check_names(evidence.when, known, where, f"evidence {evidence.key}")
            for slot in evidence.fills:
                if slot not in slot_names:
                    yield f"{where}: evidence {evidence.key} fills unknown slot '{slot}'"
