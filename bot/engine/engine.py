"""The conversation engine: `handle(session, event) -> Turn`, pure and synchronous.

One `transitions` machine per flow is built at load time with `model=None`; a
session never becomes a machine model. Each step makes a throwaway `_Cursor` (just a
`state` and the condition scope) and fires `machine.events["next"].trigger(cursor)`,
the library's pattern for serving any number of models without `add_model`.
The engine imports nothing from Telegram, storage or the clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast

from transitions import Machine, Transition
from transitions.core import EventData

from bot.engine.answers import parse_bool, parse_days, parse_money
from bot.engine.costs import estimate_cost
from bot.engine.diagnosis import Assessment, Diagnoser, normalize_text, story_keys
from bot.engine.events import Chose, Command, CommandName, Event, Said, Start
from bot.engine.session import Session, SlotValue, Snapshot
from bot.engine.turn import (
    Block,
    Days,
    Money,
    Msg,
    Option,
    Percent,
    Phrase,
    Question,
    RankedCause,
    Ranking,
    Say,
    Tone,
    Turn,
)
from bot.spec.loader import DERIVED_NAMES
from bot.spec.model import DialogSpec, Flow, ScalarValue, Slot, SlotType, State, placeholders

NEXT = "next"
_RANKING = "_ranking"  # the diagnosis itself, kept beside the derived values it feeds
# A flow whose say-only states loop would otherwise spin forever; validation cannot
# see every condition's outcome, so the engine stops and restarts the user instead.
MAX_HOPS = 64
SKIP_WORDS = frozenset({"skip", "跳过", "不知道", "不清楚", "don't know", "dont know", "pass", "/skip"})
_SPACES = re.compile(r"\s+")

Aliases = Callable[[str], Iterable[str]]
ValueOf = Msg | Money | Days | Percent | str | int


def _normalize(text: str) -> str:
    return _SPACES.sub(" ", normalize_text(text.strip())).strip(" .。!！?？")


@lru_cache(maxsize=4096)
def _static_msg(msgid: str) -> Msg:
    return Msg(msgid)


class _Move(Transition):
    """A transition that checks its conditions and moves, nothing else.

    Dialog states have no enter/exit/before/after callbacks, and the library's general
    path (callback lookups, logging, enter/exit bookkeeping) was most of a step's cost.
    """

    def execute(self, event_data: EventData) -> bool:
        for condition in self.conditions:
            # Our conditions are always callables (built in _build_machine), never names.
            if bool(cast(Callable[[EventData], Any], condition.func)(event_data)) != condition.target:
                return False
        cast(_Cursor, event_data.model).state = str(self.dest)
        return True


class _DialogMachine(Machine):
    transition_cls = _Move


class _Cursor:
    """What the state machine moves: a state and what its conditions may read."""

    __slots__ = ("scope", "state")

    def __init__(self, state: str, scope: Mapping[str, Any]) -> None:
        self.state = state
        self.scope = scope


class _Scope(Mapping[str, Any]):
    """Slots plus derived values (diagnosis, costs), computed once and only when asked for."""

    def __init__(self, engine: Engine, slots: Mapping[str, SlotValue]) -> None:
        self._engine = engine
        self._slots = slots
        self._derived: dict[str, Any] | None = None

    def _all(self) -> dict[str, Any]:
        if self._derived is None:
            self._derived = self._engine.derived(self._slots)
        return self._derived

    def __getitem__(self, key: str) -> Any:
        if key in self._slots:
            return self._slots[key]
        return self._all()[key]

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._slots:
            return self._slots[key]
        if key not in self._engine.derived_names:
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
        self.derived_names = frozenset(DERIVED_NAMES | {f"p_{c.id}" for c in spec.causes} | {_RANKING})
        crisis_words = [re.escape(w) for words in spec.crisis.keywords.values() for w in words]
        self._crisis = re.compile("|".join(crisis_words)) if crisis_words else None
        self._machines = {name: self._build_machine(flow) for name, flow in spec.flows.items()}
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

    @staticmethod
    def _build_machine(flow: Flow) -> _DialogMachine:
        targets = {b.target for s in flow.states.values() for b in s.branches}
        states = list(flow.states) + sorted(t for t in targets if t.startswith("@"))
        machine = _DialogMachine(
            model=None,
            states=states,
            initial=flow.start,
            auto_transitions=False,
            send_event=True,
        )
        for state in flow.states.values():
            for branch in state.branches:
                conditions: list[str | Callable[..., bool | None]] = []
                if branch.when is not None:
                    condition = branch.when
                    conditions.append(lambda event, c=condition: c.holds(event.model.scope))
                machine.add_transition(NEXT, state.name, branch.target, conditions=conditions)
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

    def message(self, key: str, **values: ValueOf) -> Msg:
        """One of the advisor's own texts from messages.yaml."""
        return Msg(self.spec.messages.get(key, key), values)

    def handle(self, session: Session, event: Event) -> Turn:
        """Apply `event` to `session`; the returned Turn carries the new session."""
        if not self.is_valid(session):
            return self._recover(session)
        if isinstance(event, Start):
            fresh = self.new_session(event.locale or session.locale)
            return self._advance(fresh.evolve(version=session.version + 1), [])
        if isinstance(event, Command):
            return self._command(session, event)
        if isinstance(event, Chose):
            return self._chose(session, event)
        return self._said(session, event)

    def resume(self, session: Session, blocks: Iterable[Block] = ()) -> Turn:
        """The current question again (after help, a language switch, a stale button)."""
        if not self.is_valid(session):
            return self._recover(session)
        state = self._state(session)
        if state.end:
            return Turn(session, (*blocks, Say(self.message("finished"))), None, changed=False, finished=True)
        if not state.is_question:
            return self._advance(session, list(blocks))
        return Turn(session, tuple(blocks), self._question(session, state), changed=False)

    def read_answer(self, slot_name: str, text: str) -> SlotValue:
        """Parse `text` as an answer for `slot_name` (for `diagnose --answer`); ValueError if it is not one."""
        for flow in self.spec.flows.values():
            for state in flow.states.values():
                if state.slot == slot_name:
                    probe = Session(flow=flow.name, state=state.name, locale=self.locales[0])
                    answer = self._typed_answer(probe, state, text)
                    if answer.problem is not None or answer.value is None:
                        raise ValueError(f"{text!r} is not an answer for '{slot_name}'")
                    return answer.value
        raise ValueError(f"unknown slot '{slot_name}'")

    def is_valid(self, session: Session) -> bool:
        """False for a session the current dialogs cannot continue (an operator removed its state)."""
        flow = self.spec.flows.get(session.flow)
        return flow is not None and session.state in flow.states and session.locale in self.locales

    # ------------------------------------------------------------------ events

    def _recover(self, session: Session) -> Turn:
        locale = session.locale if session.locale in self.locales else self.locales[0]
        fresh = self.new_session(locale).evolve(version=session.version + 1)
        return self._advance(fresh, [Say(self.message("session_updated"), Tone.WARNING)])

    def _command(self, session: Session, event: Command) -> Turn:
        if event.name is CommandName.RESTART:
            fresh = self.new_session(session.locale).evolve(version=session.version + 1)
            return self._advance(fresh, [Say(self.message("restarted"))])
        if event.name is CommandName.BACK:
            if not session.history:
                return self.resume(session, [Say(self.message("nothing_to_go_back_to"), Tone.WARNING)])
            snap = session.history[-1]
            back = session.evolve(
                flow=snap.flow, state=snap.state, slots=dict(snap.slots), history=session.history[:-1]
            )
            return Turn(back, (), self._question(back, self._state(back)))
        if event.name is CommandName.LANGUAGE:
            locale = self._pick_locale(session.locale, event.argument)
            switched = session.evolve(locale=locale)
            turn = self.resume(switched, [Say(self.message("language_switched"))])
            return Turn(switched, turn.blocks, turn.question, changed=True, finished=turn.finished)
        return self.resume(session, [Say(self.message("help"))])

    def _pick_locale(self, current: str, wanted: str) -> str:
        wanted = wanted.strip().lower().replace("-", "_")
        for locale in self.locales:
            if wanted and (locale.lower() == wanted or locale.lower().startswith(wanted[:2])):
                return locale
        others = [loc for loc in self.locales if loc != current]
        return others[0] if others else current

    def _chose(self, session: Session, event: Chose) -> Turn:
        state = self._state(session)
        options = self._options(self.spec.flows[session.flow], state) if state.is_question else ()
        if event.version != session.version or not 0 <= event.index < len(options):
            turn = self.resume(session, [Say(self.message("stale_button"), Tone.WARNING)])
            turn.stale = True
            return turn
        return self._answer(session, state, self._option_answer(session, state, event.index))

    def _said(self, session: Session, event: Said) -> Turn:
        blocks: list[Block] = []
        if self._in_crisis(event.text):
            hotline = self.spec.crisis.hotlines.get(session.locale, next(iter(self.spec.crisis.hotlines.values()), ""))
            blocks.append(Say(self.message("crisis", hotline=hotline), Tone.URGENT))
        if event.text.startswith("/") and not blocks:
            return self.resume(session, [Say(self.message("unknown_command"), Tone.WARNING)])
        state = self._state(session)
        if state.end:
            fresh = self.new_session(session.locale).evolve(version=session.version + 1)
            return self._advance(fresh, blocks)
        if not state.is_question:
            return self._advance(session, blocks)
        answer = self._typed_answer(session, state, event.text)
        if answer.problem is not None:
            if blocks and self._slot(session, state).type is not SlotType.STORY:
                return self.resume(session, blocks)  # after crisis words, no scolding re-prompt
            return self.resume(session, [*blocks, Say(answer.problem, Tone.WARNING)])
        return self._answer(session, state, answer, blocks)

    def _in_crisis(self, text: str) -> bool:
        return self._crisis is not None and self._crisis.search(text.lower()) is not None

    # ------------------------------------------------------------------ answers

    def _answer(self, session: Session, state: State, answer: _Answer, blocks: Iterable[Block] = ()) -> Turn:
        slot = self._slot(session, state)
        slots = dict(session.slots)
        if answer.skipped:
            slots.pop(slot.name, None)
        elif answer.value is not None:
            slots[slot.name] = answer.value
            if slot.type is SlotType.STORY and isinstance(answer.value, list):
                self._fill_from_story(slots, answer.value)
        snap = Snapshot(session.flow, session.state, dict(session.slots))
        answered = session.evolve(slots=slots, history=(*session.history, snap))
        scope = _Scope(self, answered.slots)
        return self._advance(self._step(answered, scope), list(blocks), scope)

    def _fill_from_story(self, slots: dict[str, SlotValue], keys: list[str]) -> None:
        found = set(keys)
        for cause in self.spec.causes:
            for evidence in cause.evidence:
                if evidence.key in found:
                    for name, value in evidence.fills.items():
                        slots.setdefault(name, value)

    def _typed_answer(self, session: Session, state: State, text: str) -> _Answer:
        slot = self._slot(session, state)
        words = _normalize(text)
        picks = self._option_words[(session.flow, state.name)]
        options = self._options(self.spec.flows[session.flow], state)
        numbered = slot.type in (SlotType.CHOICE, SlotType.BOOL)
        if numbered and words.isdigit() and 1 <= int(words) <= len(options):
            return self._option_answer(session, state, int(words) - 1)
        if words in picks:
            return self._option_answer(session, state, picks[words])
        if state.skippable and words in SKIP_WORDS:
            return _Answer(skipped=True)
        return self._parse(slot, text)

    def _option_answer(self, session: Session, state: State, index: int) -> _Answer:
        if (
            index >= len(state.options)
            and state.skippable
            and index == len(self._options(self.spec.flows[session.flow], state)) - 1
        ):
            return _Answer(skipped=True)
        slot = self._slot(session, state)
        if slot.type is SlotType.BOOL and not state.options:
            return _Answer(value=index == 0)
        value: ScalarValue = state.options[index].value
        return _Answer(value=value)

    def _parse(self, slot: Slot, text: str) -> _Answer:
        if slot.type is SlotType.STORY:
            if not text.strip():
                return _Answer(problem=self.message("invalid_choice"))
            return _Answer(value=[e.key for e in self.diagnoser.read_story(text)])
        parsed: int | Decimal | bool | None
        if slot.type is SlotType.DAYS:
            parsed = parse_days(text)
        elif slot.type is SlotType.MONEY:
            parsed = parse_money(text)
        elif slot.type is SlotType.BOOL:
            parsed = parse_bool(text)
        else:
            parsed = None
        if parsed is None:
            return _Answer(problem=Msg(slot.invalid) if slot.invalid else self.message(f"invalid_{slot.type.value}"))
        if not isinstance(parsed, bool) and not self._in_range(slot, Decimal(parsed)):
            return _Answer(problem=self._range_problem(slot))
        if isinstance(parsed, Decimal):
            return _Answer(value=int(parsed) if parsed == parsed.to_integral_value() else float(parsed))
        return _Answer(value=parsed)

    @staticmethod
    def _in_range(slot: Slot, number: Decimal) -> bool:
        return (slot.minimum is None or number >= slot.minimum) and (slot.maximum is None or number <= slot.maximum)

    def _range_problem(self, slot: Slot) -> Msg:
        def shown(limit: Decimal | None) -> ValueOf:
            if limit is None:
                return "—"
            if slot.type is SlotType.MONEY:
                return Money(limit)
            return Days(int(limit)) if slot.type is SlotType.DAYS else int(limit)

        return self.message("out_of_range", min=shown(slot.minimum), max=shown(slot.maximum))

    # ------------------------------------------------------------------ moving

    def _advance(self, session: Session, blocks: list[Block], scope: _Scope | None = None) -> Turn:
        """Show what the current state says and go on until a question or the end."""
        passed: list[tuple[str, str]] = []
        if scope is None:  # (not `or`: a Mapping is truthy by len(), which would diagnose)
            scope = _Scope(self, session.slots)  # slots do not change while passing through
        for _ in range(MAX_HOPS):
            state = self._state(session)
            passed.append((session.flow, state.name))
            if state.is_question:
                if self._needs_asking(session, state, scope):
                    question = self._question(session, state)
                    return Turn(session, tuple(blocks), question, passed=tuple(passed))
            else:
                blocks.extend(self._show(session, state, scope))
                if state.end:
                    return Turn(session, tuple(blocks), None, finished=True, passed=tuple(passed))
            session, before = self._step(session, scope), session
            if (session.flow, session.state) == (before.flow, before.state):
                break
        return self._recover(session)

    def _step(self, session: Session, scope: _Scope) -> Session:
        """Leave the current state by its first `next` whose condition holds."""
        cursor = _Cursor(session.state, scope)
        self._machines[session.flow].events[NEXT].trigger(cursor)
        if cursor.state.startswith("@"):
            flow = self.spec.flows[cursor.state[1:]]
            return session.evolve(flow=flow.name, state=flow.start, version=session.version)
        return session.evolve(state=cursor.state, version=session.version)

    def _needs_asking(self, session: Session, state: State, scope: _Scope) -> bool:
        if state.slot in session.slots:
            return False  # already known, e.g. from the user's own words
        return state.when is None or state.when.holds(scope)

    def _question(self, session: Session, state: State) -> Question:
        flow = self.spec.flows[session.flow]
        assert state.ask is not None
        options = self._choices[(flow.name, state.name)]
        numbered = self._slot(session, state).type in (SlotType.CHOICE, SlotType.BOOL)
        prompt = self._msg(state.ask, session)
        return Question(state.name, prompt, options, session.version, state.skippable, numbered)

    def _options(self, flow: Flow, state: State) -> tuple[Msg, ...]:
        return self._buttons[(flow.name, state.name)]

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

    def _slot(self, session: Session, state: State) -> Slot:
        return self.spec.flows[session.flow].slots[state.slot or ""]

    # ------------------------------------------------------------------ showing

    def _show(self, session: Session, state: State, scope: _Scope) -> Iterator[Block]:
        for text in state.say:
            if text.when is None or text.when.holds(scope):
                yield Say(self._msg(text.text, session, scope))
        if state.show_ranking:
            yield self._ranking(scope[_RANKING])
        for phrase in state.phrases:
            if phrase.when is None or phrase.when.holds(scope):
                title = self._msg(phrase.title, session, scope) if phrase.title else None
                yield Phrase(self._msg(phrase.text, session, scope), title)

    def _ranking(self, assessments: list[Assessment]) -> Ranking:
        causes = []
        for assessment in assessments:
            reasons = tuple(Msg(e.reason) for e in assessment.evidence if e.reason and e.ratio > 1)
            causes.append(
                RankedCause(assessment.cause.id, Msg(assessment.cause.label), assessment.probability, reasons)
            )
        return Ranking(tuple(causes))

    def assess(self, slots: Mapping[str, SlotValue]) -> list[Assessment]:
        """The causes ranked for these answers (also the `diagnose` command's core)."""
        return self.diagnoser.rank(slots, story_keys(slots))

    def derived(self, slots: Mapping[str, SlotValue]) -> dict[str, Any]:
        """Values conditions and texts may use besides the slots (see docs/dialogs.md)."""
        ranking = self.assess(slots)
        values: dict[str, Any] = {f"p_{a.cause.id}": a.probability for a in ranking}
        values[_RANKING] = ranking
        values["top_cause"] = ranking[0].cause.id if ranking else None
        values["second_cause"] = ranking[1].cause.id if len(ranking) > 1 else None
        top_reasons = [e.reason for e in ranking[0].evidence if e.reason and e.ratio > 1] if ranking else []
        values["top_reason"] = top_reasons[0] if top_reasons else None
        values.update(self._costs(slots))
        return values

    def _costs(self, slots: Mapping[str, SlotValue]) -> dict[str, Decimal]:
        product = slots.get("product")
        amount, days = slots.get("amount"), slots.get("days_overdue")
        rates = self.spec.costs.get(str(product)) or self.spec.costs.get("other_loan")
        if rates is None or isinstance(amount, bool | list | str) or amount is None:
            return {}
        if isinstance(days, bool) or not isinstance(days, int):
            return {}
        cost = estimate_cost(rates, Decimal(str(amount)), days)
        return {"cost_interest": cost.interest, "cost_fee": cost.fee, "cost_total": cost.total}

    def _msg(self, msgid: str, session: Session, scope: _Scope | None = None) -> Msg:
        names = placeholders(msgid)  # validated at load: never malformed here
        if not names:
            return _static_msg(msgid)
        if scope is None:
            scope = _Scope(self, session.slots)
        values: dict[str, ValueOf] = {}
        for name in names:
            value = self._display(name, scope.get(name), session)
            if value is not None:
                values[name] = value
        return Msg(msgid, values)

    def _display(self, name: str, value: Any, session: Session) -> ValueOf | None:
        """A value as a user should see it: amounts as money, day counts as days, ids as labels."""
        if name == "hotline":
            hotlines = self.spec.crisis.hotlines
            return hotlines.get(session.locale) or next(iter(hotlines.values()), None)
        if value is None:
            return None
        if name in ("top_cause", "second_cause"):
            return Msg(self.spec.cause(value).label)
        if name == "top_reason":
            return Msg(value)
        if name.startswith("p_"):
            return Percent(float(value))
        if name.startswith("cost_"):
            return Money(Decimal(value))
        slot = self.spec.flows[session.flow].slots.get(name) or self._any_slot(name)
        if slot is None:
            return str(value)
        if slot.type is SlotType.MONEY:
            return Money(Decimal(str(value)))
        if slot.type is SlotType.DAYS:
            return Days(int(value))
        if slot.type is SlotType.BOOL:
            return self.message("yes" if value else "no")
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
