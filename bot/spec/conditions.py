"""A tiny, safe condition language for dialog YAML.

    days_overdue > 90 and product in ['credit_card', 'huabei']
    not income_stable or amount == none

Names, numbers, quoted strings, `true`/`false`/`none`, lists of literals, the six
comparisons, `in`/`not in`, `and`/`or`/`not` and parentheses. Parsed once at load
into a tree of closures; nothing is ever executed from the text itself. A missing
name is `None`, and every ordering comparison with `None` is false, so a question not
yet answered never satisfies `amount > 0`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Scope = Mapping[str, Any]
Predicate = Callable[[Scope], Any]


class ConditionError(ValueError):
    """The condition text is not in the language; `column` is 0-based within the text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.column = column


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?)
      | (?P<string>'[^']*'|"[^"]*")
      | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_LITERALS = {"true": True, "false": False, "none": None}
_KEYWORDS = {"and", "or", "not", "in"}
_NONE = object()


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, op, name, keyword, end
    text: str
    column: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            column = len(text) - len(text[pos:].lstrip())
            raise ConditionError(f"unexpected character {text[column]!r}", column)
        group = match.lastgroup or ""
        value, start = match.group(group), match.start(group)
        kind = "keyword" if group == "name" and value in _KEYWORDS else group
        tokens.append(_Token(kind, value, start))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """An ordering comparison that is false, not an error, for missing or mixed values."""

    def safe(left: Any, right: Any) -> bool:
        if left is None or right is None:
            return False
        if isinstance(left, str) != isinstance(right, str):
            return False
        return compare(left, right)

    return safe


@dataclass(frozen=True)
class Condition:
    """A parsed condition: call `holds(scope)`; `names` are the names it reads."""

    source: str
    names: frozenset[str]
    _predicate: Predicate

    def holds(self, scope: Scope) -> bool:
        return bool(self._predicate(scope))


class _Parser:
    """Recursive descent: or > and > not > comparison > atom."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.names: set[str] = set()
        # Which closures are plain name look-ups or constants, to specialise comparisons.
        # Keyed by id(): the closures stay alive in the tree until parsing ends.
        self.name_of: dict[int, str] = {}
        self.constant_of: dict[int, Any] = {}

    @property
    def current(self) -> _Token:
        return self.tokens[self.pos]

    def take(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.current
        if token.kind == kind and (text is None or token.text == text):
            self.pos += 1
            return token
        return None

    def expect(self, kind: str, text: str, what: str) -> None:
        if not self.take(kind, text):
            raise ConditionError(f"expected {what}", self.current.column)

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.current.kind != "end":
            raise ConditionError(f"unexpected {self.current.text!r}", self.current.column)
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.take("keyword", "or"):
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            first, second = parts
            return lambda scope: first(scope) or second(scope)
        return lambda scope: any(part(scope) for part in parts)

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.take("keyword", "and"):
            parts.append(self.negation())
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            first, second = parts
            return lambda scope: first(scope) and second(scope)
        return lambda scope: all(part(scope) for part in parts)

    def negation(self) -> Predicate:
        if self.take("keyword", "not"):
            inner = self.negation()
            return lambda scope: not inner(scope)
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.atom()
        token = self.current
        if token.kind == "op" and token.text in _COMPARE:
            self.pos += 1
            right = self.atom()
            compare = _COMPARE[token.text]
            if token.text not in ("==", "!="):
                compare = _ordered(compare)
            name, constant = self.name_of.get(id(left)), self.constant_of.get(id(right), _NONE)
            if name is not None and constant is not _NONE:
                # The common shape, `slot == 'value'`, without two closure calls per test.
                return lambda scope: compare(scope.get(name), constant)
            return lambda scope: compare(left(scope), right(scope))
        negate = False
        if token.kind == "keyword" and token.text == "not":
            following = self.tokens[self.pos + 1]
            if following.kind == "keyword" and following.text == "in":
                self.pos += 1
                negate = True
        if self.take("keyword", "in"):
            options = self.atom()

            def contains(scope: Scope) -> bool:
                value, pool = left(scope), options(scope)
                found = isinstance(pool, list | tuple | str) and value in pool
                return found != negate

            return contains
        return left

    def atom(self) -> Predicate:
        token = self.current
        if self.take("op", "("):
            inner = self.disjunction()
            self.expect("op", ")", "')'")
            return inner
        if self.take("op", "["):
            items: list[Any] = []
            while not self.take("op", "]"):
                if items:
                    self.expect("op", ",", "',' or ']'")
                items.append(self.literal())
            frozen = tuple(items)
            return self.constant(frozen)
        if token.kind == "name":
            self.pos += 1
            if token.text in _LITERALS:
                return self.constant(_LITERALS[token.text])
            self.names.add(token.text)
            name = token.text

            def lookup(scope: Scope) -> Any:
                return scope.get(name)

            self.name_of[id(lookup)] = name
            return lookup
        return self.constant(self.literal())

    def constant(self, value: Any) -> Predicate:
        def fixed(scope: Scope) -> Any:
            return value

        self.constant_of[id(fixed)] = value
        return fixed

    def literal(self) -> Any:
        token = self.current
        if token.kind == "number":
            self.pos += 1
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "string":
            self.pos += 1
            return token.text[1:-1]
        if token.kind == "name" and token.text in _LITERALS:
            self.pos += 1
            return _LITERALS[token.text]
        if token.kind == "end":
            raise ConditionError("the condition ends too early", token.column)
        raise ConditionError(f"expected a value, found {token.text!r}", token.column)


def parse_condition(text: str) -> Condition:
    """Parse `text`; raises `ConditionError` with the column of the problem."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("a condition must be a non-empty text", 0)
    parser = _Parser(text)
    predicate = parser.parse()
    return Condition(text, frozenset(parser.names), predicate)
