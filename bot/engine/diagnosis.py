"""Which causes most probably led to the overdue: a small Bayesian ranking.

Each cause starts at its prior (the source document's share). Every piece of
evidence that holds, an answer or a keyword in the user's own words, multiplies the
cause's odds by its likelihood ratio; the ranking is the normalised result. With no
evidence it is exactly the priors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.spec.model import Cause, Evidence, ScalarValue


@dataclass(slots=True)
class Assessment:
    """One cause's probability and the evidence that moved it (strongest first)."""

    cause: Cause
    probability: float
    evidence: tuple[Evidence, ...]


# A keyword right after a negation is not evidence: "我没有失业", "I wasn't laid off".
_NEGATED = re.compile(r"(?:没有|没|不是|未|并非|不|\bnot|n't|\bnever|\bno)\s*$")
_NEGATION_REACH = 8  # characters before a keyword where a negation counts


def _keyword_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    # Latin words match whole words ("forgot" not inside "unforgotten"); Chinese has no
    # spaces, so Chinese keywords match anywhere.
    parts = []
    for word in words:
        escaped = re.escape(word.lower())
        parts.append(rf"(?<![a-z]){escaped}(?![a-z])" if word.isascii() else escaped)
    return re.compile("|".join(parts)) if parts else None


def _negated(text: str, start: int) -> bool:
    return _NEGATED.search(text, max(0, start - _NEGATION_REACH), start) is not None


def normalize_text(text: str) -> str:
    """Lower case, with typographic apostrophes and full-width spaces made plain."""
    return text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u3000", " ")


class Diagnoser:
    """Ranks causes from slots; finds evidence in free text. Built once per spec."""

    def __init__(self, causes: Iterable[Cause]) -> None:
        self.causes = tuple(causes)
        # One alternation with a named group per evidence: a story is scanned once.
        self._by_group: dict[str, Evidence] = {}
        groups = []
        for cause in self.causes:
            for evidence in cause.evidence:
                pattern = _keyword_pattern(w for words in evidence.keywords.values() for w in words)
                if pattern:
                    group = f"e{len(self._by_group)}"
                    self._by_group[group] = evidence
                    groups.append(f"(?P<{group}>{pattern.pattern})")
        self._pattern = re.compile("|".join(groups)) if groups else None

    def read_story(self, text: str) -> list[Evidence]:
        """The keyword evidence found in what the user wrote, in either language."""
        if self._pattern is None:
            return []
        text = normalize_text(text)
        found = {m.lastgroup for m in self._pattern.finditer(text) if not _negated(text, m.start())}
        return [evidence for group, evidence in self._by_group.items() if group in found]

    def rank(self, scope: Mapping[str, Any], story_keys: Iterable[str] = ()) -> list[Assessment]:
        """Causes from most to least probable given answers (`scope`) and story evidence keys."""
        found = set(story_keys)
        weights = []
        for cause in self.causes:
            weight = cause.prior
            held = []
            for evidence in cause.evidence:
                if evidence.key in found or (evidence.when is not None and evidence.when.holds(scope)):
                    weight *= evidence.ratio
                    held.append(evidence)
            held.sort(key=lambda e: -e.ratio)
            weights.append((cause, weight, tuple(held)))
        total = sum(weight for _, weight, _ in weights) or 1.0
        ranked = [Assessment(cause, weight / total, held) for cause, weight, held in weights]
        # Ties keep the spec's order, which is the order of the priors.
        ranked.sort(key=lambda a: -a.probability)
        return ranked


def story_keys(slots: Mapping[str, ScalarValue | list[str]]) -> list[str]:
    """Evidence keys kept by story slots (lists of strings)."""
    return [key for value in slots.values() if isinstance(value, list) for key in value]
