"""The conversation engine: `handle(session, event) -> Turn`, pure and synchronous.

One `transitions` machine runs every flow. Its states are the dialog states, named
`flow.state`; its `next` transitions are the states' `next:` branches, each guarded by
the branch's condition; a jump to another flow (`to: "@cardholder"`) is a transition
to that flow's first state; end states are the library's `final` states. What a state
says or asks is produced by its `on_enter` callback, into the turn being built.

The machine is built once, with `model=None`. A step wraps the session in a throwaway
`_Cursor` (the state name, the slots' scope and the turn so far) and fires
`machine.events["next"].trigger(cursor)`, the library's way of serving any number of
models without `add_model`. `/back`, `/restart` and a fresh start enter a state
through the library's `to_<state>` transitions, so their texts come from `on_enter`
as well. The engine imports nothing from Telegram, storage or the clock, and keeps no
state between calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast

from transitions import Event
from transitions.core import EventData
from transitions.core import State as MachineState
from transitions.extensions.markup import MarkupMachine

from bot.engine.answers import (
    Doubt,
    Kind,
    Reading,
    is_unsure,
    parse_bool,
    read_day_of_month,
    read_slot,
    readback,
    shown,
)
from bot.engine.calculator import Calculation, calculation_msgs, chart_msgs
from bot.engine.crisis import CrisisDetector, reply_due
from bot.engine.derived import CALCULATION, RANKING, DerivedValues, Shown
from bot.engine.diagnosis import Assessment, Diagnoser, normalize_text, story_keys
from bot.engine.events import Chose, Command, CommandName, Said, Start
from bot.engine.events import Event as UserEvent
from bot.engine.session import Session, SlotValue, Snapshot, range_keys
from bot.engine.turn import (
    Action,
    Block,
    Curve,
    Days,
    Money,
    Msg,
    Option,
    Phrase,
    Question,
    RankedCause,
    Ranking,
    Repayment,
    Say,
    Tone,
    Turn,
)
from bot.spec.conditions import Condition
from bot.spec.model import DialogSpec, Flow, ScalarValue, Slot, SlotType, State, placeholders

NEXT = "next"
SEPARATOR = "."  # machine state names are "flow.state" (validation keeps "." out of names)
# A flow whose say-only states loop would otherwise spin forever; validation cannot
# see every condition's outcome, so the engine stops and restarts the user instead.
MAX_HOPS = 64
_SPACES = re.compile(r"\s+")

Aliases = Callable[[str], Iterable[str]]
ValueOf = Shown


_NUMBER_KINDS = {SlotType.DAYS: Kind.DAYS, SlotType.MONEY: Kind.MONEY}


def _plain(number: Decimal) -> int | float:
    """A Decimal as the JSON-friendly number a session keeps."""
    return int(number) if number == number.to_integral_value() else float(number)


def _normalize(text: str) -> str:
    return _SPACES.sub(" ", normalize_text(text.strip())).strip(" .。!！?？")


@lru_cache(maxsize=4096)
def _static_msg(msgid: str) -> Msg:
    return Msg(msgid)


def place(flow: str, state: str) -> str:
    """The machine's name for a dialog state."""
    return f"{flow}{SEPARATOR}{state}"


class _Place(MachineState):
    """A dialog state. Entering and leaving run the callbacks exactly as the library does,
    without its INFO line per callback: that would be a log line per state per user."""

    def enter(self, event_data: EventData) -> None:
        event_data.machine.callbacks(self.on_enter, event_data)

    def exit(self, event_data: EventData) -> None:
        event_data.machine.callbacks(self.on_exit, event_data)


class DialogMachine(MarkupMachine):
    """The dialog's machine: a `MarkupMachine`, so `graph` can draw it from its own markup."""

    state_cls = _Place

    def callbacks(self, funcs: Iterable[Any], event_data: EventData) -> None:
        for func in funcs:  # the library's loop, minus its INFO line per callback
            self.callback(func, event_data)


def _guard(condition: Condition) -> Callable[[EventData], bool]:
    """A branch's condition as a transition condition; named by its source for the diagram."""

    def holds(event: EventData) -> bool:
        return condition.holds(cast(_Cursor, event.model).scope)

    holds.__name__ = condition.source
    return holds


class _Cursor:
    """What the machine moves: a state name, what conditions read, and the turn so far."""

    __slots__ = ("actions", "blocks", "finished", "milestones", "passed", "question", "scope", "session", "state")

    def __init__(self, state: str, session: Session, scope: _Scope, blocks: Iterable[Block] = ()) -> None:
        self.state = state
        self.session = session  # slots, locale and version of the turn being built
        self.scope = scope
        self.blocks: list[Block] = list(blocks)
        self.question: Question | None = None
        self.finished = False
        self.passed: list[tuple[str, str]] = []
        self.milestones: list[str] = []
        self.actions: list[Action] = []


class _Scope(Mapping[str, Any]):
    """Slots plus derived values (diagnosis, costs), computed once and only when asked for."""

    def __init__(self, values: DerivedValues, slots: Mapping[str, SlotValue]) -> None:
        self._values = values
        self._slots = slots
        self._derived: dict[str, Any] | None = None

    def _all(self) -> dict[str, Any]:
        if self._derived is None:
            self._derived = self._values.compute(self._slots)
        return self._derived

    def __getitem__(self, key: str) -> Any:
        if key in self._slots:
            return self._slots[key]
        return self._all()[key]

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._slots:
            return self._slots[key]
        if key not in self._values.names and key not in (RANKING, CALCULATION):
            return default  # an unanswered slot: no need to diagnose to know that
        return self._all().get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter({**self._all(), **self._slots})

    def __len__(self) -> int:
        return len({**self._all(), **self._slots})


@dataclass(slots=True)
class _Answer:
    """A parsed answer, or the message explaining why it is not one."""

    value: SlotValue | None = None
    problem: Msg | None = None
    skipped: bool = False
    # A typed number or range: kept beside the value, and said back to the user.
    reading: Reading | None = None
    readback: Msg | None = None


class Engine:
    """Steps conversations through the flows of one `DialogSpec`."""

    def __init__(
        self,
        spec: DialogSpec,
        locales: tuple[str, ...] = ("zh_CN", "en"),
        aliases: Aliases | None = None,
    ) -> None:
        """`aliases(msgid)` gives a text's translations, so typed option labels match in
        any language; `locales` are the languages `/language` switches between."""
        self.spec = spec
        self.locales = locales
        self.diagnoser = Diagnoser(spec.causes)
        self.values = DerivedValues(spec, self.diagnoser)
        self._skip_words = frozenset(_normalize(word) for word in spec.skip_words)
        self._crisis = CrisisDetector.from_spec(spec)
        self._places = {place(f.name, s.name): (f, s) for f in spec.flows.values() for s in f.states.values()}
        self.machine = self._build_machine()
        # The commands that enter a state named in settings.yaml, and that state.
        named = {
            CommandName.CALCULATOR: spec.calculator_state,
            CommandName.REMIND: spec.reminders.remind_state,
            CommandName.CHECKIN: spec.reminders.checkin_state,
        }
        self._jumps = {command: entry[0] for command, entry in named.items() if entry is not None}
        self._next: Event = self.machine.events[NEXT]
        questions = [(f, s) for f in spec.flows.values() for s in f.states.values() if s.is_question]
        # Built once: the buttons of every question, and every word that picks one.
        self._buttons = {(f.name, s.name): tuple(self._labels(f, s)) for f, s in questions}
        self._choices = {
            key: tuple(Option(i, label) for i, label in enumerate(labels)) for key, labels in self._buttons.items()
        }
        self._option_words = {
            (f.name, s.name): self._index_options(f, s, aliases or (lambda m: ())) for f, s in questions
        }

    # ------------------------------------------------------------------ setup

    def _build_machine(self) -> DialogMachine:
        spec = self.spec
        states = [_Place(name, on_enter=[self._entered], final=state.end) for name, (_, state) in self._places.items()]
        entry = spec.flows.get(spec.entry_flow)
        machine = DialogMachine(
            model=None,
            states=states,
            initial=place(entry.name, entry.start) if entry else states[0].name,
            # `to_<state>`: how /back, /restart and a fresh start enter a state.
            auto_transitions=True,
            send_event=True,
            on_final=[self._finished],
        )
        for name, (flow, state) in self._places.items():
            for branch in state.branches:
                if branch.target.startswith("@"):
                    # "@flow": that flow's first state; "@flow.state": one of its states.
                    other_name, _, other_state = branch.target[1:].partition(SEPARATOR)
                    other = spec.flows[other_name]
                    target = place(other.name, other_state or other.start)
                else:
                    target = place(flow.name, branch.target)
                guards: list[str | Callable[..., bool | None]] | None = None
                if branch.when is not None:
                    guards = [_guard(branch.when)]
                machine.add_transition(NEXT, name, target, conditions=guards)
        return machine

    def _index_options(self, flow: Flow, state: State, aliases: Aliases) -> dict[str, int]:
        """Every word that picks an option: its label in any language, synonyms, value."""
        words: dict[str, int] = {}
        for index, option in enumerate(self._labels(flow, state)):
            spelled = [option.msgid, *aliases(option.msgid)]
            if index < len(state.options):
                spec_option = state.options[index]
                spelled += [*spec_option.synonyms, str(spec_option.value)]
            for word in spelled:
                words.setdefault(_normalize(word), index)
        return words

    # ------------------------------------------------------------------ public

    def new_session(self, locale: str) -> Session:
        """A session at the start of the entry flow (nothing shown yet: send `Start`)."""
        flow = self.spec.flows[self.spec.entry_flow]
        return Session(flow=flow.name, state=flow.start, locale=locale)

    def restart(self, locale: str, version: int = 0, notice: bool = True) -> Turn:
        """A fresh conversation at the entry flow, in `locale`, at session `version`.

        With `notice`, it opens with the `session_updated` message (for a conversation
        the current dialogs cannot continue). Pass the old version + 1 as `version` so
        the old conversation's buttons are stale.
        """
        if locale not in self.locales:
            locale = self.locales[0]
        blocks = [Say(self.message("session_updated"), Tone.WARNING)] if notice else []
        fresh = self.new_session(locale)
        return self._enter(replace(fresh, version=version), blocks)

    def message(self, key: str, **values: ValueOf) -> Msg:
        """One of the advisor's own texts from messages.yaml."""
        return Msg(self.spec.messages.get(key, key), values)

    def handle(self, session: Session, event: UserEvent) -> Turn:
        """Apply `event` to `session`; the returned Turn carries the new session."""
        if not self.is_valid(session):
            return self.restart(session.locale, session.version + 1)
        if isinstance(event, Start):
            return self.restart(event.locale or session.locale, session.version + 1, notice=False)
        if isinstance(event, Command):
            return self._command(session, event)
        if isinstance(event, Chose):
            return self._chose(session, event)
        return self._said(session, event)

    def resume(self, session: Session, blocks: Iterable[Block] = ()) -> Turn:
        """The current question again (after help, a language switch, a stale button)."""
        if not self.is_valid(session):
            return self.restart(session.locale, session.version + 1)
        state = self._state(session)
        if state.end:
            return Turn(session, (*blocks, Say(self.message("finished"))), None, changed=False, finished=True)
        turn = self._enter(session, blocks, place(session.flow, session.state))
        moved = (turn.session.flow, turn.session.state) != (session.flow, session.state)
        return turn if moved or not state.is_question else replace(turn, changed=False)

    def read_answer(self, slot_name: str, text: str) -> SlotValue:
        """Parse `text` as an answer for `slot_name` (for `diagnose --answer`); ValueError if it is not one."""
        for flow in self.spec.flows.values():
            for state in flow.states.values():
                if state.slot == slot_name:
                    answer = self._typed_answer(flow, state, text)
                    if answer.problem is not None or answer.value is None:
                        raise ValueError(f"{text!r} is not an answer for '{slot_name}'")
                    return answer.value
        raise ValueError(f"unknown slot '{slot_name}'")

    def is_valid(self, session: Session) -> bool:
        """False for a session the current dialogs cannot continue (an operator removed its state)."""
        return place(session.flow, session.state) in self._places and session.locale in self.locales

    def assess(self, slots: Mapping[str, SlotValue]) -> list[Assessment]:
        """The causes ranked for these answers (also the `diagnose` command's core)."""
        return self.diagnoser.rank(slots, story_keys(slots))

    def derived(self, slots: Mapping[str, SlotValue]) -> dict[str, Any]:
        """Values conditions and texts may use besides the slots (bot/engine/derived.py)."""
        return self.values.compute(slots)

    # ------------------------------------------------------------------ events

    def _command(self, session: Session, event: Command) -> Turn:
        if event.name is CommandName.RESTART:
            fresh = replace(self.new_session(session.locale), version=session.version + 1)
            return self._enter(fresh, [Say(self.message("restarted"))])
        if event.name is CommandName.BACK:
            return self._back(session)
        jump = self._jumps.get(event.name)
        if jump is not None:
            # Straight to the calculator, the reminder questions or the check-in, from
            # anywhere; what is known (the amount) is not asked again, /back returns.
            flow, _, state = jump.partition(SEPARATOR)
            snap = Snapshot(session.flow, session.state, dict(session.slots))
            moved = session.evolve(flow=flow, state=state, history=(*session.history, snap))
            return self._enter(moved, [], jump)
        if event.name is CommandName.LANGUAGE:
            locale = self._pick_locale(session.locale, event.argument)
            turn = self.resume(session.evolve(locale=locale), [Say(self.message("language_switched"))])
            return replace(turn, changed=True)
        return self.resume(session, [Say(self.message("help"))])

    def _back(self, session: Session) -> Turn:
        """To the question answered last, with the answers as they were before it."""
        if not session.history:
            return self.resume(session, [Say(self.message("nothing_to_go_back_to"), Tone.WARNING)])
        snap = session.history[-1]
        if place(snap.flow, snap.state) not in self._places:
            return self.restart(session.locale, session.version + 1)
        back = session.evolve(slots=dict(snap.slots), history=session.history[:-1])
        cursor = _Cursor(place(session.flow, session.state), back, _Scope(self.values, back.slots))
        self.machine.events[f"to_{place(snap.flow, snap.state)}"].trigger(cursor)
        return self._finish(cursor)

    def _pick_locale(self, current: str, wanted: str) -> str:
        wanted = wanted.strip().lower().replace("-", "_")
        for locale in self.locales:
            if wanted and (locale.lower() == wanted or locale.lower().startswith(wanted[:2])):
                return locale
        others = [loc for loc in self.locales if loc != current]
        return others[0] if others else current

    def _chose(self, session: Session, event: Chose) -> Turn:
        flow, state = self._places[place(session.flow, session.state)]
        options = self._buttons[(flow.name, state.name)] if state.is_question else ()
        if event.version != session.version or not 0 <= event.index < len(options):
            return replace(self.resume(session, [Say(self.message("stale_button"), Tone.WARNING)]), stale=True)
        return self._answer(session, state, self._option_answer(flow, state, event.index))

    def _said(self, session: Session, event: Said) -> Turn:
        blocks: list[Block] = []
        despair = self._crisis.detect(event.text)
        since = None if session.since_crisis is None else session.since_crisis + 1
        if despair and reply_due(since):
            hotline = self.values.show("hotline", None, session.locale) or ""
            blocks.append(Say(self.message("crisis", hotline=hotline), Tone.URGENT))
            since = 0
        if since != session.since_crisis:
            # Counted on the session the rest of the turn builds on (same version).
            session = replace(session, since_crisis=since)
        if event.text.startswith("/") and not despair:
            return self.resume(session, [Say(self.message("unknown_command"), Tone.WARNING)])
        flow, state = self._places[place(session.flow, session.state)]
        if state.end:
            return self._enter(replace(self.new_session(session.locale), version=session.version + 1), blocks)
        if not state.is_question:
            return self._enter(session, blocks, place(session.flow, session.state))
        answer = self._typed_answer(flow, state, event.text)
        if answer.problem is not None:
            if despair and flow.slots[state.slot or ""].type is not SlotType.STORY:
                return self.resume(session, blocks)  # after words of despair, no scolding re-prompt
            return self.resume(session, [*blocks, Say(answer.problem, Tone.WARNING)])
        if answer.readback is not None:
            blocks.append(Say(answer.readback))
        return self._answer(session, state, answer, blocks)

    # ------------------------------------------------------------------ answers

    def _answer(self, session: Session, state: State, answer: _Answer, blocks: Iterable[Block] = ()) -> Turn:
        slot = self.spec.flows[session.flow].slots[state.slot or ""]
        slots = dict(session.slots)
        for end in range_keys(slot.name):
            slots.pop(end, None)
        if answer.skipped:
            slots.pop(slot.name, None)
        elif answer.value is not None:
            slots[slot.name] = answer.value
            reading = answer.reading
            if reading is not None and reading.low is not None and reading.high is not None:
                low_key, high_key = range_keys(slot.name)
                slots[low_key], slots[high_key] = _plain(reading.low), _plain(reading.high)
            if slot.type is SlotType.STORY and isinstance(answer.value, list):
                self._fill_from_story(slots, answer.value)
        snap = Snapshot(session.flow, session.state, dict(session.slots))
        answered = session.evolve(slots=slots, history=(*session.history, snap))
        cursor = _Cursor(place(session.flow, session.state), answered, _Scope(self.values, slots), blocks)
        self._next.trigger(cursor)  # leave the question by its first branch whose condition holds
        return self._finish(cursor)

    def _fill_from_story(self, slots: dict[str, SlotValue], keys: list[str]) -> None:
        found = set(keys)
        for cause in self.spec.causes:
            for evidence in cause.evidence:
                if evidence.key in found:
                    for name, value in evidence.fills.items():
                        slots.setdefault(name, value)

    def _typed_answer(self, flow: Flow, state: State, text: str) -> _Answer:
        slot = flow.slots[state.slot or ""]
        words = _normalize(text)
        picks = self._option_words[(flow.name, state.name)]
        options = self._buttons[(flow.name, state.name)]
        numbered = slot.type in (SlotType.CHOICE, SlotType.BOOL)
        if numbered and words.isdigit() and 1 <= int(words) <= len(options):
            return self._option_answer(flow, state, int(words) - 1)
        if words in picks:
            return self._option_answer(flow, state, picks[words])
        # "不确定，大概…" is an answer, and a story that says "不知道钱花哪了" is a story: only a
        # number question takes a shrug anywhere in the text as Skip.
        unsure = slot.type is not SlotType.STORY and is_unsure(text, self._skip_words)
        if state.skippable and (words in self._skip_words or unsure):
            return _Answer(skipped=True)
        return self._parse(slot, text)

    def _option_answer(self, flow: Flow, state: State, index: int) -> _Answer:
        if index >= len(state.options) and state.skippable and index == len(self._buttons[(flow.name, state.name)]) - 1:
            return _Answer(skipped=True)
        slot = flow.slots[state.slot or ""]
        if slot.type is SlotType.BOOL and not state.options:
            return _Answer(value=index == 0)
        value: ScalarValue = state.options[index].value
        return _Answer(value=value)

    def _parse(self, slot: Slot, text: str) -> _Answer:
        if slot.type is SlotType.STORY:
            if not text.strip():
                return _Answer(problem=self.message("invalid_choice"))
            return _Answer(value=[e.key for e in self.diagnoser.read_story(text)])
        invalid = Msg(slot.invalid) if slot.invalid else self.message(f"invalid_{slot.type.value}")
        if slot.type is SlotType.BOOL:
            parsed = parse_bool(text)
            return _Answer(problem=invalid) if parsed is None else _Answer(value=parsed)
        if slot.type is SlotType.DAY_OF_MONTH:
            day = read_day_of_month(text)
            return _Answer(problem=invalid) if day is None else _Answer(value=day)
        kind = _NUMBER_KINDS.get(slot.type)
        if kind is None:
            return _Answer(problem=invalid)
        reading = read_slot(text, kind, slot.minimum, slot.maximum)
        if reading is None:
            return _Answer(problem=invalid)
        if isinstance(reading, Doubt):
            if reading.reason == "out_of_range":
                return _Answer(problem=self._range_problem(slot))
            return _Answer(problem=self.message(reading.reason))
        return _Answer(value=_plain(reading.value), reading=reading, readback=readback(reading, kind, self.message))

    def _range_problem(self, slot: Slot) -> Msg:
        def shown(limit: Decimal | None) -> ValueOf:
            if limit is None:
                return "—"
            if slot.type is SlotType.MONEY:
                return Money(limit)
            return Days(int(limit)) if slot.type is SlotType.DAYS else int(limit)

        return self.message("out_of_range", min=shown(slot.minimum), max=shown(slot.maximum))

    # ------------------------------------------------------------------ moving

    def _enter(self, session: Session, blocks: Iterable[Block], target: str | None = None) -> Turn:
        """Enter `target` (the entry flow's start by default) through the library's
        `to_<state>` transition, then go on until a question or the end."""
        entry = self.spec.flows[self.spec.entry_flow]
        target = target or place(entry.name, entry.start)
        current = place(session.flow, session.state)
        cursor = _Cursor(current if current in self._places else target, session, _Scope(self.values, session.slots))
        cursor.blocks.extend(blocks)
        self.machine.events[f"to_{target}"].trigger(cursor)
        return self._finish(cursor)

    def _finish(self, cursor: _Cursor) -> Turn:
        """Fire `next` until a state asked a question or an end state was reached."""
        for _ in range(MAX_HOPS):
            if cursor.question is not None or cursor.finished:
                flow, state = self._places[cursor.state]
                at = cursor.session  # already at the turn's version: only the place changes
                session = Session(
                    flow.name, state.name, at.locale, at.slots, at.history, at.version, at.flags, at.since_crisis
                )
                return Turn(
                    session,
                    tuple(cursor.blocks),
                    cursor.question,
                    finished=cursor.finished,
                    passed=tuple(cursor.passed),
                    milestones=tuple(cursor.milestones),
                    actions=tuple(cursor.actions),
                )
            if not self._next.trigger(cursor):
                break
        return self.restart(cursor.session.locale, cursor.session.version + 1)

    def _entered(self, event: EventData) -> None:
        """`on_enter` of every dialog state: say its texts, or ask its question if still needed."""
        cursor = cast(_Cursor, event.model)
        flow, state = self._places[cursor.state]
        cursor.passed.append((flow.name, state.name))
        if state.milestone is not None:
            cursor.milestones.append(state.milestone)
        if state.is_question:
            if self._needs_asking(cursor, state):
                cursor.question = self._question(flow, state, cursor)
        else:
            cursor.blocks.extend(self._show(state, cursor))
        for action in state.actions:  # only states that do not ask (validated): entered once per turn
            values = {parameter: cursor.scope.get(slot) for parameter, slot in action.slots.items()}
            cursor.actions.append(Action(action.name, values, len(cursor.blocks)))

    @staticmethod
    def _finished(event: EventData) -> None:
        """`on_final` of the machine: an end state was entered."""
        cast(_Cursor, event.model).finished = True

    @staticmethod
    def _needs_asking(cursor: _Cursor, state: State) -> bool:
        if state.slot in cursor.session.slots and not state.repeat:
            return False  # already known, e.g. from the user's own words (a menu asks again)
        return state.when is None or state.when.holds(cursor.scope)

    def _question(self, flow: Flow, state: State, cursor: _Cursor) -> Question:
        assert state.ask is not None
        options = self._choices[(flow.name, state.name)]
        numbered = flow.slots[state.slot or ""].type in (SlotType.CHOICE, SlotType.BOOL)
        prompt = self._msg(state.ask, cursor)
        return Question(state.name, prompt, options, cursor.session.version, state.skippable, numbered)

    def _labels(self, flow: Flow, state: State) -> Iterator[Msg]:
        slot = flow.slots.get(state.slot or "")
        if slot is not None and slot.type is SlotType.BOOL and not state.options:
            yield self.message("yes")
            yield self.message("no")
        yield from (Msg(option.label) for option in state.options)
        if state.skippable:
            yield self.message("skip")

    def _state(self, session: Session) -> State:
        return self.spec.flows[session.flow].states[session.state]

    # ------------------------------------------------------------------ showing

    def _show(self, state: State, cursor: _Cursor) -> Iterator[Block]:
        scope = cursor.scope
        for text in state.say:
            if text.when is None or text.when.holds(scope):
                yield Say(self._msg(text.text, cursor))
        if state.show_ranking:
            yield self._ranking(scope[RANKING])
        if state.show_calculation:
            calculation = scope.get(CALCULATION)
            if calculation is not None:
                yield self._repayment(calculation)
        for phrase in state.phrases:
            if phrase.when is None or phrase.when.holds(scope):
                title = self._msg(phrase.title, cursor) if phrase.title else None
                yield Phrase(self._msg(phrase.text, cursor), title)

    def _repayment(self, calculation: Calculation) -> Repayment:
        messages = self.spec.messages
        title, x_axis, y_axis, legend = chart_msgs(calculation, messages)
        curves = tuple(
            Curve(label, option.balances, option.clears)
            for label, option in zip(legend, calculation.options, strict=True)
        )
        return Repayment(tuple(calculation_msgs(calculation, messages)), title, x_axis, y_axis, curves)

    def _ranking(self, assessments: list[Assessment]) -> Ranking:
        causes = []
        for assessment in assessments:
            reasons = tuple(Msg(e.reason) for e in assessment.evidence if e.reason and e.ratio > 1)
            causes.append(
                RankedCause(assessment.cause.id, Msg(assessment.cause.label), assessment.probability, reasons)
            )
        return Ranking(tuple(causes))

    def _msg(self, msgid: str, cursor: _Cursor) -> Msg:
        names = placeholders(msgid)  # validated at load: never malformed here
        if not names:
            return _static_msg(msgid)
        values: dict[str, ValueOf] = {}
        for name in names:
            value = self._display(name, cursor)
            if value is not None:
                values[name] = value
        return Msg(msgid, values)

    def _display(self, name: str, cursor: _Cursor) -> ValueOf | None:
        """A value as a user should see it: derived values as the registry says, slots by type."""
        value = cursor.scope.get(name)
        if name in self.values.names:
            return self.values.show(name, value, cursor.session.locale)
        if value is None:
            return None
        flow = self._places[cursor.state][0]
        slot = flow.slots.get(name) or self._any_slot(name)
        if slot is None:
            return str(value)
        kind = _NUMBER_KINDS.get(slot.type)
        if kind is not None:
            low, high = (cursor.scope.get(end) for end in range_keys(name))
            if isinstance(low, int | float) and isinstance(high, int | float):
                reading = Reading(Decimal(str(value)), Decimal(str(low)), Decimal(str(high)))
                return shown(reading, kind, self.message)
            return Money(Decimal(str(value))) if kind is Kind.MONEY else Days(int(value))
        if slot.type is SlotType.BOOL:
            return self.message("yes" if value else "no")
        if slot.type is SlotType.DAY_OF_MONTH:
            return int(value)
        if slot.type is SlotType.CHOICE:
            return self._choice_label(name, value)
        return None

    def _any_slot(self, name: str) -> Slot | None:
        return next((flow.slots[name] for flow in self.spec.flows.values() if name in flow.slots), None)

    def _choice_label(self, slot_name: str, value: Any) -> ValueOf:
        for flow in self.spec.flows.values():
            for state in flow.states.values():
                if state.slot == slot_name:
                    for option in state.options:
                        if option.value == value:
                            return Msg(option.label)
        return str(value)
