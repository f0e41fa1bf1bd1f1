"""Actions: what a dialog state asks the advisor to do besides talking (`do:` in YAML).

A state that says something may also *do* something that outlives the conversation:
set up a monthly repayment reminder, promise a check-in in a few days, record how a
check-in was answered. The engine only names the action and reads the slots it needs
(`Turn.actions`); the advisor carries it out in the same transaction that saves the
conversation, with its clock and its store. So the engine stays pure, and operators
decide in YAML where in a conversation each action happens.

```yaml
do: schedule_checkin                                  # no parameters
do: {set_reminder: {day: remind_day, days_before: remind_before}}
do: [{answer_checkin: {outcome: followup}}, schedule_checkin]
```

Each parameter names the slot that holds its value; `ACTIONS` says which parameters an
action takes, which it needs, and of which slot type. Only states that do not ask may
do something: a question is shown again after a stale button or `/help`, and its
actions would be carried out twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bot.spec.model import DialogSpec, ReminderSettings, SlotType, Where

if TYPE_CHECKING:
    from bot.spec.loader import _Reader


class ActionName(StrEnum):
    """Every action a state may ask for."""

    # A monthly repayment reminder from the slots named (bot/reminders).
    SET_REMINDER = "set_reminder"
    # A check-in in `checkin_days` days (settings.yaml `reminders:`); replaces a pending one.
    SCHEDULE_CHECKIN = "schedule_checkin"
    # The check-in was answered: counted once, as `followup.<outcome>`.
    ANSWER_CHECKIN = "answer_checkin"


@dataclass(frozen=True)
class Parameter:
    """One parameter of an action: the slot types it accepts, and whether it is needed."""

    types: frozenset[SlotType]
    required: bool = False


#: What each action takes. Parameters left out use settings.yaml `reminders:` defaults;
#: the time zone is always the person's (`zone_slot` there).
ACTIONS: dict[ActionName, dict[str, Parameter]] = {
    ActionName.SET_REMINDER: {
        "day": Parameter(frozenset({SlotType.DAY_OF_MONTH, SlotType.CHOICE}), required=True),
        "days_before": Parameter(frozenset({SlotType.CHOICE})),
        "time": Parameter(frozenset({SlotType.CHOICE})),
        "on_due_day": Parameter(frozenset({SlotType.BOOL})),
        "amount": Parameter(frozenset({SlotType.MONEY})),
    },
    ActionName.SCHEDULE_CHECKIN: {},
    ActionName.ANSWER_CHECKIN: {
        "outcome": Parameter(frozenset({SlotType.CHOICE}), required=True),
    },
}


@dataclass(frozen=True)
class ActionSpec:
    """One `do:` entry: the action, and the slot each of its parameters reads."""

    name: ActionName
    where: Where
    slots: dict[str, str] = field(default_factory=dict)


def read_actions(reader: _Reader, value: Any, where: Where, what: str) -> Iterator[ActionSpec]:
    """The `do:` of a state: a name, `{name: {parameter: slot}}`, or a list of those."""
    for item, at in reader.items(value, where, f"'do' in {what}"):
        if isinstance(item, str):
            name, arguments, args_at = item, None, at
        elif (block := reader.map(item, at, f"a 'do' item in {what}")) is not None:
            if len(block) != 1:
                reader.problem(at, f"a 'do' item in {what} names one action, e.g. {{set_reminder: {{day: …}}}}")
                continue
            name = next(iter(block))
            arguments, args_at = block[name], block.value_where[name]
        else:
            continue
        action = _action_name(reader, name, at, what)
        if action is None:
            continue
        slots: dict[str, str] = {}
        if arguments is not None:
            args = reader.map(arguments, args_at, f"the parameters of '{action}' in {what}")
            for parameter, slot in (args or {}).items():
                if parameter not in ACTIONS[action]:
                    known = ", ".join(ACTIONS[action]) or "none"
                    reader.problem(
                        args.key_where[parameter],  # type: ignore[union-attr]
                        f"'{action}' has no parameter '{parameter}'; it takes: {known}",
                    )
                elif not isinstance(slot, str):
                    reader.problem(args.value_where[parameter], f"'{parameter}' must name a slot")  # type: ignore[union-attr]
                else:
                    slots[str(parameter)] = slot
        yield ActionSpec(action, at, slots)


def _action_name(reader: _Reader, name: Any, where: Where, what: str) -> ActionName | None:
    try:
        return ActionName(str(name))
    except ValueError:
        known = ", ".join(e.value for e in ActionName)
        reader.problem(where, f"unknown action '{name}' in {what}; actions: {known}")
        return None


def check_actions(actions: tuple[ActionSpec, ...], asks: bool, slots: dict[str, SlotType], what: str) -> Iterator[str]:
    """Problems with a state's actions, given whether it asks and every declared slot's type."""
    for action in actions:
        if asks:
            yield f"{action.where}: {what} asks a question, so it cannot 'do' {action.name}: move it to one that says"
        for parameter, spec in ACTIONS[action.name].items():
            slot = action.slots.get(parameter)
            if slot is None:
                if spec.required:
                    yield f"{action.where}: '{action.name}' in {what} needs '{parameter}:' naming a slot"
                continue
            kind = slots.get(slot)
            if kind is None:
                yield f"{action.where}: '{action.name}' in {what} reads unknown slot '{slot}'"
            elif kind not in spec.types:
                wanted = " or ".join(sorted(t.value for t in spec.types))
                yield f"{action.where}: the slot '{slot}' for '{parameter}' must be of type {wanted}, not {kind.value}"


def read_reminder_settings(reader: _Reader, value: Any, where: Where) -> ReminderSettings:
    """settings.yaml `reminders:`; what is left out keeps its default."""
    from bot.reminders.schedule import MAX_DAYS_BEFORE, ScheduleError, parse_time_of_day, zone

    block = reader.map(value, where, "reminders")
    if block is None:
        return ReminderSettings()
    reader.known_keys(
        block,
        {"remind_state", "checkin_state", "zone_slot", "time_zone", "days_before", "time"}
        | {"checkin_days", "checkin_answer_days"},
        "reminders",
    )
    found: dict[str, Any] = {"where": block.where}
    for key in ("remind_state", "checkin_state"):
        if key in block:
            state, at = block[key], block.value_where[key]
            if not isinstance(state, str) or state.count(".") != 1:
                reader.problem(at, f"'{key}' must name a state as flow.state, e.g. reminders.intro")
            else:
                found[key] = (state, at)
    if "zone_slot" in block:
        if isinstance(block["zone_slot"], str):
            found["zone_slot"] = block["zone_slot"]
        else:
            reader.problem(block.value_where["zone_slot"], "'zone_slot' must name the slot holding the time zone")
    if "time_zone" in block:
        try:
            zone(str(block["time_zone"]))
            found["time_zone"] = str(block["time_zone"])
        except ScheduleError:
            reader.problem(block.value_where["time_zone"], "'time_zone' must be an IANA time zone, e.g. Asia/Shanghai")
    if "time" in block:
        try:
            found["time"] = parse_time_of_day(block["time"]).strftime("%H:%M")
        except ScheduleError:
            reader.problem(block.value_where["time"], "'time' must be a time of day such as \"09:00\" (quoted)")
    limits = {"days_before": (0, MAX_DAYS_BEFORE), "checkin_days": (1, 60), "checkin_answer_days": (1, 60)}
    for key, (low, high) in limits.items():
        if key in block:
            number = block[key]
            if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
                reader.problem(block.value_where[key], f"'{key}' must be a whole number from {low} to {high}")
            else:
                found[key] = number
    return ReminderSettings(**found)


def check_reminder_states(spec: DialogSpec) -> Iterator[str]:
    """`remind_state` and `checkin_state` name states that exist; the time zone slot, if
    some state asks it, offers only IANA time zones."""
    from bot.reminders.schedule import ScheduleError, zone

    settings = spec.reminders
    for flow in spec.flows.values():
        for state in flow.states.values():
            if state.slot != settings.zone_slot:
                continue
            slot = flow.slots.get(state.slot)
            if slot is not None and slot.type is not SlotType.CHOICE:
                yield f"{state.where}: the time zone slot '{state.slot}' must be a choice of time zones"
            for option in state.options:
                try:
                    zone(str(option.value))
                except ScheduleError:
                    yield f"{state.where}: '{option.value}' is not an IANA time zone (e.g. Asia/Shanghai)"
    for key, named in (("remind_state", spec.reminders.remind_state), ("checkin_state", spec.reminders.checkin_state)):
        if named is None:
            continue
        name, where = named
        flow_name, _, state_name = name.partition(".")
        if state_name not in (spec.flows[flow_name].states if flow_name in spec.flows else {}):
            yield f"{where}: {key} '{name}' is not a state of the flows"
