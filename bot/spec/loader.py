"""Read `dialogs/*.yaml` into a `DialogSpec`, or explain every problem with file:line:column.

YAML is read with a SafeLoader subclass that only records where each key and value
was written; nothing in a dialog file can construct Python objects. Problems are
collected, not raised one by one, so an operator sees them all at once.

This is the one reader of YAML in the bot (dialogs, examples, crisis examples,
conversation tests), so its bounds hold everywhere: a file over `MAX_YAML_BYTES`,
nesting deeper than `MAX_YAML_DEPTH`, and anchors or aliases are refused as located
problems. An alias repeats a block without writing it again, so ten lines of aliases
can stand for a billion list items (the "billion laughs"): operators do not need them,
and refusing them at the first `&` or `*` costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

import yaml

from bot.problems import ProblemsError
from bot.spec.actions import read_actions, read_reminder_settings
from bot.spec.conditions import Condition, ConditionError, parse_condition
from bot.spec.crisis_examples import attach_crisis_examples
from bot.spec.examples import attach_examples, classifier_evidence
from bot.spec.model import (
    Branch,
    Cause,
    CostInputs,
    Crisis,
    DialogSpec,
    Evidence,
    Flow,
    Option,
    PhraseSpec,
    ProductCosts,
    ReminderSettings,
    Slot,
    SlotType,
    State,
    Text,
    Where,
)
from bot.spec.rates import CalculatorRates, read_calculator

# The texts the engine and channels say themselves; messages.yaml must define each.
REQUIRED_MESSAGES = (
    # the channels' own (Telegram)
    "private_only",
    "forget_confirm",
    "forget_done",
    "forget_cancelled",
    "forget_button",
    "cancel_button",
    "one_moment",
    "error",
    "stats_title",
    # the engine's
    "invalid_choice",
    "invalid_days",
    "invalid_money",
    "invalid_bool",
    "out_of_range",
    "stale_button",
    "nothing_to_go_back_to",
    "restarted",
    "language_switched",
    "help",
    "session_updated",
    "skip",
    "yes",
    "no",
    "crisis",
    "finished",
    "unknown_command",
    # reminders and check-ins (bot/reminders, the Telegram channel)
    "invalid_day_of_month",
    "reminder_first",
    "checkin_first",
    "reminder_before",
    "reminder_before_amount",
    "reminder_due",
    "reminder_due_amount",
    "reminder_paid_button",
    "reminder_paid_done",
    "reminder_paid_noted",
    "reminders_title",
    "reminders_none",
    "reminders_monthly",
    "reminders_monthly_due_day",
    "reminders_on_the_day",
    "reminders_checkin",
    "reminders_cancel_button",
    "reminders_cancelled",
    "reminders_gone",
)


class SpecError(ProblemsError):
    """A dialog folder that cannot be used; `problems` are `file:line:column: message` lines."""


# ---------------------------------------------------------------- marked YAML


class MarkedMap(dict[Any, Any]):
    """A YAML mapping that remembers where it, its keys and its values were written."""

    where: Where
    key_where: dict[Any, Where]
    value_where: dict[Any, Where]


class MarkedList(list[Any]):
    where: Where
    item_where: list[Where]


# The largest bundled file is under 50 kB; a megabyte is twenty times that, and stops a
# pasted log or a generated monster before it is parsed.
MAX_YAML_BYTES = 1024 * 1024
# The dialogs nest 7 levels deep at most. PyYAML composes nodes recursively, so without
# a bound 10,000 nested "[" end in a RecursionError instead of a problem.
MAX_YAML_DEPTH = 64


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that the dialogs do not accept (an anchor, an alias, deep nesting)."""


def _where(file: str, mark: yaml.Mark) -> Where:
    return Where(file, mark.line + 1, mark.column + 1)


def _marked_loader(file: str, duplicates: list[str]) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
            """Refuse anchors, aliases and deep nesting before anything is built."""
            event = self.peek_event()  # type: ignore[no-untyped-call]
            anchor = getattr(event, "anchor", None)
            if isinstance(event, yaml.AliasEvent) or anchor is not None:
                mark = "*" if isinstance(event, yaml.AliasEvent) else "&"
                raise _Refused(
                    problem=f"YAML anchors and aliases ('{mark}{anchor}') are not accepted in dialogs: "
                    "write the list out in full",
                    problem_mark=event.start_mark,
                )
            if self.depth >= MAX_YAML_DEPTH:
                raise _Refused(
                    problem=f"this is nested more than {MAX_YAML_DEPTH} levels deep (a dialog needs a handful): "
                    "check the brackets and the indentation",
                    problem_mark=event.start_mark,
                )
            self.depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    def construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> MarkedMap:
        loader.flatten_mapping(node)
        result = MarkedMap()
        result.where = _where(file, node.start_mark)
        result.key_where, result.value_where = {}, {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                duplicates.append(f"{_where(file, key_node.start_mark)}: a key must be a plain word")
                continue
            if key in result:
                duplicates.append(
                    f"{_where(file, key_node.start_mark)}: '{key}' is written twice in the same "
                    f"block (first at line {result.key_where[key].line}); keep one"
                )
            result[key] = loader.construct_object(value_node, deep=True)
            result.key_where[key] = _where(file, key_node.start_mark)
            result.value_where[key] = _where(file, value_node.start_mark)
        return result

    def construct_list(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> MarkedList:
        result = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
        result.where = _where(file, node.start_mark)
        result.item_where = [_where(file, child.start_mark) for child in node.value]
        return result

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_map)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, construct_list)
    return Loader


def read_yaml(stream: IO[str] | str, file: str) -> tuple[Any, list[str]]:
    """Parse one YAML document safely; returns (data, problems)."""
    text = stream if isinstance(stream, str) else stream.read(MAX_YAML_BYTES + 1)
    # Characters never outnumber UTF-8 bytes: only a text that might fit is encoded to count.
    if len(text) > MAX_YAML_BYTES or len(text.encode("utf-8")) > MAX_YAML_BYTES:
        return None, [_too_large(file)]
    problems: list[str] = []
    try:
        data = yaml.load(text, Loader=_marked_loader(file, problems))  # noqa: S506 - a SafeLoader subclass
    except _Refused as err:
        mark = err.problem_mark
        where = _where(file, mark) if mark else Where(file, 1, 1)
        return None, [f"{where}: {err.problem}"]
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = _where(file, mark) if mark else Where(file, 1, 1)
        return None, [f"{where}: this is not valid YAML: {err.problem or err}. Check the indentation and quotes"]
    except yaml.YAMLError as err:
        return None, [f"{file}:1:1: this is not valid YAML: {err}"]
    return data, problems


def read_yaml_file(path: Path, file: str) -> tuple[Any, list[str]]:
    """`read_yaml` of a file, whose size is checked before a byte of it is read; `file` is
    the name problems give (as the operator would type it)."""
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            return None, [_too_large(file)]
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        return None, [f"{file}:1:1: this is not UTF-8 text (byte {err.start}): save it as UTF-8"]
    except OSError as err:
        return None, [f"{file}:1:1: cannot read this file: {err.strerror}"]
    return read_yaml(text, file)


def _too_large(file: str) -> str:
    return (
        f"{file}:1:1: this file is over {MAX_YAML_BYTES // (1024 * 1024)} MB; a dialog file is a few "
        "tens of kB: split it into several files"
    )


# ---------------------------------------------------------------- building


@dataclass
class _Reader:
    """Builds spec objects from one file, collecting problems and texts as it goes."""

    file: str
    problems: list[str] = field(default_factory=list)
    texts: list[tuple[str, Where]] = field(default_factory=list)

    def problem(self, where: Where, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def map(self, value: Any, where: Where, what: str) -> MarkedMap | None:
        if isinstance(value, MarkedMap):
            return value
        self.problem(where, f"{what} must be a block of 'key: value' lines")
        return None

    def items(self, value: Any, where: Where, what: str) -> Iterator[tuple[Any, Where]]:
        """A list's items with their places; a single value counts as a list of one."""
        if isinstance(value, MarkedList):
            yield from zip(value, value.item_where, strict=True)
        elif value is None:
            return
        elif isinstance(value, str | MarkedMap):
            yield value, where
        else:
            self.problem(where, f"{what} must be a list")

    def known_keys(self, block: MarkedMap, allowed: set[str], what: str) -> None:
        for key in block:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.problem(block.key_where[key], f"unknown key '{key}' in {what}; use one of: {hint}")

    def text(self, block: MarkedMap, key: str, what: str, required: bool = False) -> str | None:
        value = block.get(key)
        where = block.value_where.get(key, block.where)
        if value is None:
            if required:
                self.problem(block.where, f"{what} needs '{key}:'")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(where, f"'{key}' in {what} must be a text")
            return None
        self.texts.append((value, where))
        return value

    def condition(self, block: MarkedMap, key: str = "when") -> Condition | None:
        source = block.get(key)
        if source is None:
            return None
        where = block.value_where[key]
        try:
            return parse_condition(source if isinstance(source, str) else "")
        except ConditionError as err:
            at = Where(where.file, where.line, where.column + err.column)
            self.problem(
                at,
                f"cannot read the condition {source!r}: {err}. Write comparisons like "
                "\"days_overdue > 90 and product == 'huabei'\"",
            )
            return None

    def number(self, block: MarkedMap, key: str, what: str) -> Decimal | None:
        value = block.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.problem(block.value_where[key], f"'{key}' in {what} must be a number")
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation:
            self.problem(block.value_where[key], f"'{key}' in {what} must be a number")
            return None

    def keywords(self, value: Any, where: Where, what: str) -> dict[str, tuple[str, ...]]:
        block = self.map(value, where, what)
        if block is None:
            return {}
        result: dict[str, tuple[str, ...]] = {}
        for lang, words in block.items():
            found = [w for w, _ in self.items(words, block.value_where[lang], what) if isinstance(w, str)]
            result[str(lang)] = tuple(w.strip().lower() for w in found if w.strip())
        return result

    # -- flows

    def flow(self, doc: MarkedMap) -> Flow | None:
        self.known_keys(doc, {"flow", "title", "start", "slots", "states"}, "a flow")
        name = doc.get("flow")
        if not isinstance(name, str):
            self.problem(doc.value_where["flow"], "'flow' must be the flow's name")
            return None
        title = self.text(doc, "title", f"flow '{name}'") or name
        slots: dict[str, Slot] = {}
        slot_block = self.map(doc.get("slots", MarkedMap()), doc.value_where.get("slots", doc.where), "slots")
        for slot_name, spec in (slot_block or {}).items():
            slot = self.slot(str(slot_name), spec, slot_block.value_where[slot_name])  # type: ignore[union-attr]
            if slot:
                slots[slot.name] = slot
        states: dict[str, State] = {}
        state_block = self.map(doc.get("states"), doc.value_where.get("states", doc.where), "states")
        for state_name, spec in (state_block or {}).items():
            state = self.state(str(state_name), spec, state_block.key_where[state_name])  # type: ignore[union-attr]
            if state:
                states[state.name] = state
        start = doc.get("start")
        if not isinstance(start, str):
            self.problem(doc.where, f"flow '{name}' needs 'start:' naming its first state")
            start = ""
        return Flow(name, title, start, slots, states, doc.where)

    def slot(self, name: str, spec: Any, where: Where) -> Slot | None:
        block = self.map(spec, where, f"slot '{name}'")
        if block is None:
            return None
        self.known_keys(block, {"type", "min", "max", "invalid"}, f"slot '{name}'")
        kind = block.get("type")
        try:
            slot_type = SlotType(str(kind))
        except ValueError:
            types = ", ".join(t.value for t in SlotType)
            self.problem(block.value_where.get("type", where), f"slot '{name}' needs a type: one of {types}")
            return None
        return Slot(
            name,
            slot_type,
            self.number(block, "min", f"slot '{name}'"),
            self.number(block, "max", f"slot '{name}'"),
            self.text(block, "invalid", f"slot '{name}'"),
        )

    def state(self, name: str, spec: Any, where: Where) -> State | None:
        block = self.map(spec, where, f"state '{name}'")
        if block is None:
            return None
        what = f"state '{name}'"
        self.known_keys(
            block,
            {"say", "ask", "slot", "options", "skippable", "when", "show", "phrases", "next", "end", "repeat"}
            | {"milestone", "do"},
            what,
        )
        say = tuple(self.paragraphs(block.get("say"), block.value_where.get("say", where), what))
        options = tuple(self.options(block.get("options"), block.value_where.get("options", where), what))
        phrases = tuple(self.phrases(block.get("phrases"), block.value_where.get("phrases", where), what))
        show = block.get("show")
        if show not in (None, "ranking", "calculation"):
            self.problem(block.value_where["show"], f"'show' in {what} can only be 'ranking' or 'calculation'")
        ask = self.text(block, "ask", what)
        slot = block.get("slot")
        if ask is not None and not isinstance(slot, str):
            self.problem(block.where, f"{what} asks a question, so it needs 'slot:' to keep the answer")
        if slot is not None and ask is None:
            self.problem(block.value_where["slot"], f"{what} has 'slot:' but no 'ask:' question")
        return State(
            name=name,
            where=where,
            say=say,
            ask=ask,
            slot=slot if isinstance(slot, str) else None,
            options=options,
            skippable=block.get("skippable") is True,
            when=self.condition(block),
            show_ranking=show == "ranking",
            show_calculation=show == "calculation",
            phrases=phrases,
            branches=tuple(self.branches(block.get("next"), block.value_where.get("next", where), what)),
            end=block.get("end") is True,
            repeat=block.get("repeat") is True,
            milestone=self.milestone(block, what),
            actions=tuple(read_actions(self, block.get("do"), block.value_where.get("do", where), what)),
        )

    def milestone(self, block: MarkedMap, what: str) -> str | None:
        value = block.get("milestone")
        if value is None:
            return None
        if not isinstance(value, str) or not value.isidentifier():
            self.problem(block.value_where["milestone"], f"'milestone' in {what} must be a word, e.g. plan")
            return None
        return value

    def paragraphs(self, value: Any, where: Where, what: str) -> Iterator[Text]:
        for item, at in self.items(value, where, f"'say' in {what}"):
            if isinstance(item, str):
                self.texts.append((item, at))
                yield Text(item)
            elif block := self.map(item, at, f"a 'say' item in {what}"):
                self.known_keys(block, {"text", "when"}, f"a 'say' item in {what}")
                text = self.text(block, "text", f"a 'say' item in {what}", required=True)
                if text:
                    yield Text(text, self.condition(block))

    def options(self, value: Any, where: Where, what: str) -> Iterator[Option]:
        for item, at in self.items(value, where, f"'options' in {what}"):
            block = self.map(item, at, f"an option in {what}")
            if block is None:
                continue
            self.known_keys(block, {"label", "value", "synonyms"}, f"an option in {what}")
            label = self.text(block, "label", f"an option in {what}", required=True)
            option_value = block.get("value")
            if not isinstance(option_value, str | int | float | bool):
                self.problem(block.where, f"an option in {what} needs 'value:' (a word or a number)")
                continue
            synonyms = tuple(
                str(s).strip().lower()
                for s, _ in self.items(block.get("synonyms"), block.value_where.get("synonyms", at), "synonyms")
            )
            if label:
                yield Option(label, option_value, synonyms)

    def phrases(self, value: Any, where: Where, what: str) -> Iterator[PhraseSpec]:
        for item, at in self.items(value, where, f"'phrases' in {what}"):
            if isinstance(item, str):
                self.texts.append((item, at))
                yield PhraseSpec(item)
            elif block := self.map(item, at, f"a phrase in {what}"):
                self.known_keys(block, {"text", "title", "when"}, f"a phrase in {what}")
                text = self.text(block, "text", f"a phrase in {what}", required=True)
                if text:
                    yield PhraseSpec(text, self.text(block, "title", what), self.condition(block))

    def branches(self, value: Any, where: Where, what: str) -> Iterator[Branch]:
        for item, at in self.items(value, where, f"'next' in {what}"):
            if isinstance(item, str):
                yield Branch(item, None, at)
            elif block := self.map(item, at, f"a 'next' item in {what}"):
                self.known_keys(block, {"to", "when"}, f"a 'next' item in {what}")
                target = block.get("to")
                if not isinstance(target, str):
                    self.problem(block.where, f"a 'next' item in {what} needs 'to:' naming a state")
                    continue
                yield Branch(target, self.condition(block), block.value_where["to"])

    # -- causes, costs, settings, messages

    def causes(self, doc: MarkedMap) -> list[Cause]:
        result = []
        for item, at in self.items(doc.get("causes"), doc.value_where["causes"], "causes"):
            block = self.map(item, at, "a cause")
            if block is None:
                continue
            self.known_keys(block, {"id", "label", "prior", "evidence", "classifier"}, "a cause")
            cause_id = block.get("id")
            if not isinstance(cause_id, str):
                self.problem(block.where, "a cause needs 'id:'")
                continue
            what = f"cause '{cause_id}'"
            prior = self.number(block, "prior", what)
            if prior is None or not 0 < prior < 1:
                self.problem(block.value_where.get("prior", block.where), f"{what} needs 'prior:' between 0 and 1")
                prior = Decimal(0)
            evidence = []
            items = self.items(block.get("evidence"), block.value_where.get("evidence", at), f"{what} evidence")
            for index, (entry, entry_at) in enumerate(items, start=1):
                found = self.evidence(entry, entry_at, f"{cause_id}/{index}", what)
                if found:
                    evidence.append(found)
            evidence.extend(classifier_evidence(self, block, what, cause_id))
            label = self.text(block, "label", what, required=True) or cause_id
            result.append(Cause(cause_id, label, float(prior), tuple(evidence)))
        return result

    def evidence(self, value: Any, where: Where, key: str, what: str) -> Evidence | None:
        block = self.map(value, where, f"evidence of {what}")
        if block is None:
            return None
        self.known_keys(block, {"when", "keywords", "ratio", "reason", "fills"}, f"evidence of {what}")
        ratio = self.number(block, "ratio", f"evidence of {what}")
        if ratio is None or ratio <= 0:
            self.problem(block.where, f"evidence of {what} needs 'ratio:' above 0 (above 1 for, below 1 against)")
            return None
        when = self.condition(block)
        keywords = {}
        if "keywords" in block:
            keywords = self.keywords(block["keywords"], block.value_where["keywords"], f"keywords of {what}")
        if when is None and not keywords:
            self.problem(block.where, f"evidence of {what} needs 'when:' or 'keywords:'")
        fills: dict[str, Any] = {}
        if "fills" in block and (fill_block := self.map(block["fills"], block.value_where["fills"], "fills")):
            fills = {str(k): v for k, v in fill_block.items()}
        reason = self.text(block, "reason", f"evidence of {what}")
        return Evidence(key, float(ratio), reason, when, keywords, fills, block.where)

    def costs(self, doc: MarkedMap) -> dict[str, ProductCosts]:
        result = {}
        block = self.map(doc.get("costs"), doc.value_where["costs"], "costs")
        for product, spec in (block or {}).items():
            rates = self.map(spec, block.value_where[product], f"costs of '{product}'")  # type: ignore[union-attr]
            if rates is None:
                continue
            what = f"costs of '{product}'"
            self.known_keys(rates, {"daily_interest", "late_fee_share", "minimum_share", "cycle_days"}, what)
            daily = self.number(rates, "daily_interest", what)
            if daily is None:
                self.problem(rates.where, f"{what} needs 'daily_interest:'")
                continue
            cycle = self.number(rates, "cycle_days", what) or Decimal(30)
            result[str(product)] = ProductCosts(
                daily,
                self.number(rates, "late_fee_share", what) or Decimal(0),
                self.number(rates, "minimum_share", what) or Decimal(0),
                max(1, int(cycle)),
            )
        return result

    def cost_inputs(self, doc: MarkedMap) -> CostInputs | None:
        """`needs:` (the slots the estimate reads) and `default_product:` beside `costs:`."""
        if "needs" not in doc:
            self.problem(
                doc.where,
                "costs need 'needs: {product: …, amount: …, days: …}' naming the slots the estimate reads",
            )
            return None
        needs = self.map(doc["needs"], doc.value_where["needs"], "needs")
        if needs is None:
            return None
        self.known_keys(needs, {"product", "amount", "days", "monthly"}, "needs")
        names: dict[str, str] = {}
        for key in ("product", "amount", "days"):
            value = needs.get(key)
            if not isinstance(value, str) or not value.strip():
                self.problem(needs.value_where.get(key, needs.where), f"'needs' must name the slot for '{key}'")
                return None
            names[key] = value.strip()
        default = doc.get("default_product")
        if default is not None and not isinstance(default, str):
            self.problem(doc.value_where["default_product"], "'default_product' must name a product under costs:")
            default = None
        monthly = needs.get("monthly")
        if monthly is not None and not isinstance(monthly, str):
            self.problem(needs.value_where["monthly"], "'needs' must name the slot for 'monthly'")
            monthly = None
        return CostInputs(names["product"], names["amount"], names["days"], needs.where, default, monthly)

    def settings(self, doc: MarkedMap) -> tuple[str | None, Crisis | None]:
        block = self.map(doc.get("settings"), doc.value_where["settings"], "settings")
        if block is None:
            return None, None
        self.known_keys(block, {"entry_flow", "crisis", "skip_words", "calculator_state", "reminders"}, "settings")
        entry = block.get("entry_flow")
        crisis_block = self.map(block.get("crisis"), block.value_where.get("crisis", block.where), "crisis")
        crisis = None
        if crisis_block is not None:
            self.known_keys(crisis_block, {"keywords", "hotlines"}, "crisis")
            keywords = self.keywords(
                crisis_block.get("keywords"),
                crisis_block.value_where.get("keywords", crisis_block.where),
                "crisis keywords",
            )
            hotline_block = self.map(
                crisis_block.get("hotlines"), crisis_block.value_where.get("hotlines", crisis_block.where), "hotlines"
            )
            hotlines = {str(k): str(v) for k, v in (hotline_block or {}).items()}
            crisis = Crisis(keywords, hotlines)
        return (entry if isinstance(entry, str) else None), crisis

    def calculator_state(self, doc: MarkedMap) -> tuple[str, Where] | None:
        """Where `/calculator` takes the user: `flow.state` (checked against the flows)."""
        block = self.map(doc.get("settings"), doc.value_where["settings"], "settings")
        if block is None or "calculator_state" not in block:
            return None
        value, where = block["calculator_state"], block.value_where["calculator_state"]
        if not isinstance(value, str) or value.count(".") != 1:
            self.problem(where, "'calculator_state' must name a state as flow.state, e.g. cardholder.calculator")
            return None
        return value, where

    def skip_words(self, doc: MarkedMap) -> frozenset[str]:
        block = self.map(doc.get("settings"), doc.value_where["settings"], "settings")
        if block is None or "skip_words" not in block:
            return frozenset()
        words = self.items(block["skip_words"], block.value_where["skip_words"], "skip_words")
        return frozenset(str(word).strip().lower() for word, _ in words if str(word).strip())

    def messages(self, doc: MarkedMap) -> dict[str, str]:
        block = self.map(doc.get("messages"), doc.value_where["messages"], "messages")
        result = {}
        for key in block or {}:
            text = self.text(block, key, "messages")  # type: ignore[arg-type]
            if text:
                result[str(key)] = text
        return result


@dataclass
class _Parts:
    flows: dict[str, Flow] = field(default_factory=dict)
    causes: list[Cause] = field(default_factory=list)
    costs: dict[str, ProductCosts] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    entry_flow: str | None = None
    crisis: Crisis | None = None
    cost_inputs: CostInputs | None = None
    calculator: CalculatorRates = field(default_factory=CalculatorRates)
    skip_words: frozenset[str] = frozenset()
    calculator_state: tuple[str, Where] | None = None
    reminders: ReminderSettings = field(default_factory=ReminderSettings)


def _read_file(reader: _Reader, doc: Any, parts: _Parts) -> None:
    """Dispatch one file on its first key."""
    if not isinstance(doc, MarkedMap) or not doc:
        reader.problem(
            Where(reader.file, 1, 1), "expected a block starting with flow:, causes:, costs:, settings: or messages:"
        )
        return
    kind = next(iter(doc))
    handlers: dict[str, Callable[[], None]] = {
        "flow": lambda: _add_flow(reader, doc, parts),
        "causes": lambda: parts.causes.extend(reader.causes(doc)),
        "costs": lambda: _add_costs(reader, doc, parts),
        "messages": lambda: parts.messages.update(reader.messages(doc)),
        "settings": lambda: _add_settings(reader, doc, parts),
    }
    handler = handlers.get(kind)
    if handler is None:
        reader.problem(
            doc.key_where[kind],
            f"unknown kind of file '{kind}': start with flow:, causes:, costs:, settings: or messages:",
        )
        return
    handler()


def _add_flow(reader: _Reader, doc: MarkedMap, parts: _Parts) -> None:
    flow = reader.flow(doc)
    if flow is None:
        return
    if flow.name in parts.flows:
        reader.problem(flow.where, f"flow '{flow.name}' is defined twice (also {parts.flows[flow.name].where})")
    parts.flows[flow.name] = flow


def _add_costs(reader: _Reader, doc: MarkedMap, parts: _Parts) -> None:
    parts.costs.update(reader.costs(doc))
    parts.cost_inputs = reader.cost_inputs(doc)
    if (calculator := read_calculator(reader, doc)) is not None:
        parts.calculator = calculator


def _add_settings(reader: _Reader, doc: MarkedMap, parts: _Parts) -> None:
    parts.entry_flow, parts.crisis = reader.settings(doc)
    parts.skip_words = reader.skip_words(doc)
    parts.calculator_state = reader.calculator_state(doc)
    block = doc.get("settings")
    if isinstance(block, MarkedMap) and "reminders" in block:
        parts.reminders = read_reminder_settings(reader, block["reminders"], block.value_where["reminders"])


def texts_in(stream: IO[str] | str, file: str) -> list[tuple[str, Where]]:
    """The translatable texts of one dialog file (for the Babel extractor)."""
    reader = _Reader(file)
    doc, reader.problems = read_yaml(stream, file)
    _read_file(reader, doc, _Parts())
    return reader.texts


def load_dialogs(folder: Path) -> DialogSpec:
    """Load and check every `*.yaml` in `folder`; raises `SpecError` listing every problem."""
    from bot.spec.checks import check_spec  # the cross-file checks need the whole spec

    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise SpecError([f"{folder}: no dialog files (*.yaml) here"])
    problems: list[str] = []
    texts: list[tuple[str, Where]] = []
    parts = _Parts()
    unreadable = False
    for path in files:
        name = _display_name(path)
        reader = _Reader(name)
        doc, yaml_problems = read_yaml_file(path, name)
        reader.problems.extend(yaml_problems)
        unreadable = unreadable or doc is None
        if doc is not None:
            _read_file(reader, doc, parts)
        problems.extend(reader.problems)
        texts.extend(reader.texts)
    first_file = _display_name(files[0])
    parts.causes, example_problems = attach_examples(folder, parts.causes)
    problems.extend(example_problems)
    crisis, crisis_problems = attach_crisis_examples(folder, parts.crisis or Crisis({}, {}))
    problems.extend(crisis_problems)
    spec = DialogSpec(
        flows=parts.flows,
        causes=tuple(parts.causes),
        costs=parts.costs,
        messages=parts.messages,
        entry_flow=parts.entry_flow or next(iter(parts.flows), ""),
        crisis=crisis,
        texts=tuple(texts),
        cost_inputs=parts.cost_inputs,
        calculator=parts.calculator,
        skip_words=parts.skip_words,
        calculator_state=parts.calculator_state,
        reminders=parts.reminders,
    )
    if not unreadable:  # a file that did not parse would only cause follow-on noise
        problems.extend(check_spec(spec, first_file))
    if problems:
        raise SpecError(problems)
    return spec


def _display_name(path: Path) -> str:
    """A path as the operator would type it: relative to the working folder when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
