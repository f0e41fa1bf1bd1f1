"""Which causes most probably led to the overdue: a small Bayesian ranking.

Each cause starts at its prior (the source document's share). Every piece of
evidence that holds, an answer or a keyword in the user's own words, multiplies the
cause's odds by its likelihood ratio; the ranking is the normalised result. With no
evidence it is exactly the priors.

The text classifier (`bot.engine.classifier`, trained on the operators' examples) is one
more piece of evidence, read from the story like the keywords. It gives each cause a
probability p; the examples are balanced over the K causes, so K·p is the likelihood
ratio of the story for that cause (capped both ways, so that one reading never outweighs
every answer; not for a cause whose keywords the story already named). A story keeps only these figures as evidence keys
(`unstable_income/model:0.62`), never its words. When the classifier is not confident,
or the story is too short to say anything, it adds nothing. Only when it is sure does
the story also keep the cause's `classifier:` evidence (`unstable_income/model`), whose
`fills:` answer questions the way a keyword's do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.engine.classifier import CauseClassifier, train
from bot.spec.examples import MODEL, model_key
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

# The classifier's thresholds, measured by cross-validation on the bundled examples
# (`python -m bot eval-causes` prints the table they come from):
CONFIDENT = 0.5  # top probability from which it counts: 77% of examples, 82% of them right
SURE = 0.9  # from which it also fills questions: 24% of examples, 94% of them right
RATIO_CAP = 4.0  # for a cause: as strong as the strongest keyword, never stronger
# Against a cause, only this far: a story tells the main thing, and not mentioning a
# second cause is weak evidence that there is none (people often have two).
RATIO_FLOOR = 0.5
# A story shorter than this says too little to classify ("你好", "ok", "还不上了"): on a
# few characters the model extrapolates with confidence it has not earned. A Chinese
# character counts 1, a Latin word 2.
MIN_CONTENT = 6
_MODEL_READING = re.compile(r"^(?P<cause>[^/]+)/" + re.escape(MODEL) + r":(?P<p>[0-9.]+)$")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[a-zA-Z]{2,}")


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


def content(text: str) -> int:
    """How much a story says, roughly: Chinese characters plus two per Latin word."""
    return len(_CJK.findall(text)) + 2 * len(_LATIN_WORD.findall(text))


def model_ratio(probability: float, causes: int) -> float:
    """The likelihood ratio of a classifier probability among `causes` balanced classes."""
    return min(RATIO_CAP, max(RATIO_FLOOR, probability * causes))


def normalize_text(text: str) -> str:
    """Lower case, with typographic apostrophes and full-width spaces made plain."""
    return text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u3000", " ")


class Diagnoser:
    """Ranks causes from slots; finds evidence in free text. Built once per spec."""

    def __init__(self, causes: Iterable[Cause]) -> None:
        """Compile the keywords and train the classifier on the causes' examples (if any)."""
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
        self._index = {cause.id: i for i, cause in enumerate(self.causes)}
        # A cause's `classifier:` block (its reason and fills), if it has one.
        self._model_evidence = {
            cause.id: next((e for e in cause.evidence if e.key == model_key(cause.id)), None) for cause in self.causes
        }
        examples = {cause.id: cause.examples for cause in self.causes if cause.examples}
        self.classifier: CauseClassifier | None = train(examples) if len(examples) == len(self.causes) else None

    def read_story(self, text: str) -> list[Evidence]:
        """The evidence in what the user wrote, in either language: keywords, then the classifier's reading."""
        found: list[Evidence] = []
        if self._pattern is not None:
            plain = normalize_text(text)
            groups = {m.lastgroup for m in self._pattern.finditer(plain) if not _negated(plain, m.start())}
            found = [evidence for group, evidence in self._by_group.items() if group in groups]
        return found + self._classify(text)

    def _classify(self, text: str) -> list[Evidence]:
        if self.classifier is None or content(text) < MIN_CONTENT:
            return []
        probabilities = self.classifier.probabilities(text)
        # Rounded once, here: the story keeps these figures and rank() reads them back.
        rounded = {cause: round(p, 2) for cause, p in probabilities.items()}
        top = min(self.causes, key=lambda c: (-rounded[c.id], self._index[c.id]))
        if rounded[top.id] < CONFIDENT:
            return []
        readings = [self._reading(cause.id, rounded[cause.id]) for cause in self.causes]
        sure = self._model_evidence[top.id]
        if rounded[top.id] >= SURE and sure is not None:
            readings.append(sure)
        return readings

    def _reading(self, cause_id: str, probability: float) -> Evidence:
        """The classifier's evidence for one cause, as kept in a story (`<cause>/model:<p>`)."""
        block = self._model_evidence.get(cause_id)
        return Evidence(
            key=f"{model_key(cause_id)}:{probability:.2f}",
            ratio=model_ratio(probability, len(self.causes)),
            reason=block.reason if block else None,
            where=block.where if block else None,
        )

    def rank(self, scope: Mapping[str, Any], story_keys: Iterable[str] = ()) -> list[Assessment]:
        """Causes from most to least probable given answers (`scope`) and story evidence keys."""
        found = set(story_keys)
        readings: dict[str, Evidence] = {}
        for key in sorted(found):
            match = _MODEL_READING.match(key)
            if match and match["cause"] in self._index:
                readings[match["cause"]] = self._reading(match["cause"], float(match["p"]))
        weights = []
        for cause in self.causes:
            weight = cause.prior
            held = []
            for evidence in cause.evidence:
                if evidence.key == model_key(cause.id):
                    continue  # its weight is the classifier's reading, below
                if evidence.key in found or (evidence.when is not None and evidence.when.holds(scope)):
                    weight *= evidence.ratio
                    held.append(evidence)
            # A cause whose keywords the story named is not read again by the classifier:
            # the same words would count twice.
            named = any(e.keywords and e.key in found for e in cause.evidence)
            if (reading := readings.get(cause.id)) is not None and not named:
                weight *= reading.ratio
                held.append(reading)
            # Strongest first; among equals, what the person wrote in their own words ("You
            # mentioned losing your job") before the answer it filled in for them.
            held.sort(key=lambda e: (-e.ratio, e.when is not None))
            weights.append((cause, weight, tuple(held)))
        total = sum(weight for _, weight, _ in weights) or 1.0
        ranked = [Assessment(cause, weight / total, held) for cause, weight, held in weights]
        # Ties keep the spec's order (the order of the priors), also when floating point
        # leaves two equal products a few ulps apart.
        ranked.sort(key=lambda a: (-round(a.probability, 9), self._index[a.cause.id]))
        return ranked


def story_keys(slots: Mapping[str, ScalarValue | list[str]]) -> list[str]:
    """Evidence keys kept by story slots (lists of strings)."""
    return [key for value in slots.values() if isinstance(value, list) for key in value]
