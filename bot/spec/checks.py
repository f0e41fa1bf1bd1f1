"""Checks that need the whole dialog folder: references, reachability, dead ends, priors."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.spec.actions import check_actions, check_reminder_states
from bot.spec.conditions import Condition
from bot.spec.model import DialogSpec, Flow, SlotType, State, Where, placeholders

PRIOR_TOLERANCE = 1e-6
# Flow and state names become the machine's state names ("flow.state") and diagram ids.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What each input of the cost estimate must be.
_COST_SLOT_TYPES = {
    "product": SlotType.CHOICE,
    "amount": SlotType.MONEY,
    "days": SlotType.DAYS,
    "monthly": SlotType.MONEY,
}


def check_spec(spec: DialogSpec, first_file: str) -> list[str]:
    """Every problem with `spec` as a `file:line:column: message` line."""
    from bot.engine.derived import condition_names, text_names  # the one list of derived values

    slot_names = {name for flow in spec.flows.values() for name in flow.slots}
    known = condition_names(spec) | slot_names
    in_texts = text_names(spec) | slot_names
    problems: list[str] = []
    entries = _entry_points(spec)
    for flow in spec.flows.values():
        problems.extend(_check_flow(flow, spec, known, in_texts, entries.get(flow.name, set())))
    problems.extend(check_reminder_states(spec))
    problems.extend(_check_causes(spec, slot_names, known, first_file))
    problems.extend(_check_cost_inputs(spec))
    if spec.calculator_state is not None:
        name, where = spec.calculator_state
        flow_name, _, state_name = name.partition(".")
        if state_name not in (spec.flows[flow_name].states if flow_name in spec.flows else {}):
            problems.append(f"{where}: calculator_state '{name}' is not a state of the flows")
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


def _check_cost_inputs(spec: DialogSpec) -> Iterator[str]:
    needs = spec.cost_inputs
    if needs is None:
        return
    slots = {name: slot for flow in spec.flows.values() for name, slot in flow.slots.items()}
    roles = [("product", needs.product), ("amount", needs.amount), ("days", needs.days)]
    if needs.monthly is not None:
        roles.append(("monthly", needs.monthly))
    for role, name in roles:
        slot = slots.get(name)
        wanted = _COST_SLOT_TYPES[role]
        if slot is None:
            yield (
                f"{needs.where}: the cost estimate needs the slot '{name}' ({role}), which no flow declares; "
                f"declared: {', '.join(sorted(slots)) or 'none'}"
            )
        elif slot.type is not wanted:
            yield f"{needs.where}: the cost estimate's {role} slot '{name}' must be of type {wanted.value}"
    if needs.default_product is not None and needs.default_product not in spec.costs:
        yield f"{needs.where}: default_product '{needs.default_product}' has no rates under costs:"


def _entry_points(spec: DialogSpec) -> dict[str, set[str]]:
    """States entered from outside their flow, by flow: a command's or a check-in's
    target (settings.yaml), or a jump from another flow to `@flow.state`."""
    named = [spec.calculator_state, spec.reminders.remind_state, spec.reminders.checkin_state]
    targets = [entry[0] for entry in named if entry is not None]
    for flow in spec.flows.values():
        for state in flow.states.values():
            targets.extend(b.target[1:] for b in state.branches if b.target.startswith("@") and "." in b.target)
    entries: dict[str, set[str]] = {}
    for target in targets:
        flow_name, _, state_name = target.partition(".")
        entries.setdefault(flow_name, set()).add(state_name)
    return entries


def _check_flow(flow: Flow, spec: DialogSpec, known: set[str], in_texts: set[str], entries: set[str]) -> Iterator[str]:
    if not _NAME.fullmatch(flow.name):
        yield f"{flow.where}: flow name '{flow.name}' must be a word (letters, digits, _)"
    if flow.start not in flow.states:
        yield f"{flow.where}: flow '{flow.name}' starts at '{flow.start}', which is not one of its states"
    for state in flow.states.values():
        if not _NAME.fullmatch(state.name):
            yield f"{state.where}: state name '{state.name}' must be a word (letters, digits, _)"
        yield from _check_state(state, flow, spec, known, in_texts)
    reachable = _reachable(flow, entries)
    for state in flow.states.values():
        if state.name not in reachable:
            yield (
                f"{state.where}: state '{state.name}' cannot be reached from '{flow.start}'; "
                "point a 'next' at it or remove it"
            )


def _check_state(state: State, flow: Flow, spec: DialogSpec, known: set[str], in_texts: set[str]) -> Iterator[str]:
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
    for condition, at in _conditions(state):
        yield from _check_names(condition, known, at, f"state '{state.name}'")
    for text in [t.text for t in state.say] + [p.text for p in state.phrases]:
        yield from _check_placeholders(text, in_texts, where)
    if state.end:
        return
    if not state.branches:
        yield f"{where}: state '{state.name}' is a dead end: give it 'next:' or 'end: true'"
    elif state.branches[-1].when is not None:
        yield (
            f"{state.branches[-1].where}: the last 'next' of state '{state.name}' has a condition; "
            "add a final {to: …} without 'when' so the conversation can always go on"
        )
    slot_types = {name: slot.type for f in spec.flows.values() for name, slot in f.slots.items()}
    yield from check_actions(state.actions, state.is_question, slot_types, f"state '{state.name}'")
    for branch in state.branches:
        if branch.target.startswith("@"):
            # "@flow" is the flow's first state; "@flow.state" one of its states.
            other, _, other_state = branch.target[1:].partition(".")
            if other not in spec.flows:
                yield f"{branch.where}: there is no flow '{other}'"
            elif other_state and other_state not in spec.flows[other].states:
                yield f"{branch.where}: flow '{other}' has no state '{other_state}'"
        elif branch.target not in flow.states:
            yield (
                f"{branch.where}: state '{state.name}' goes to unknown state '{branch.target}'; "
                f"states: {', '.join(sorted(flow.states))}"
            )


def _conditions(state: State) -> Iterator[tuple[Condition, Where]]:
    """Each condition with the place to report it: a branch's own line, else the state's."""
    candidates = [state.when, *(t.when for t in state.say), *(p.when for p in state.phrases)]
    yield from ((c, state.where) for c in candidates if c is not None)
    yield from ((b.when, b.where) for b in state.branches if b.when is not None)


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


def _reachable(flow: Flow, entries: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [flow.start, *entries]
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
