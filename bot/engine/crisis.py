"""Crisis safety: does a message speak of suicide or self-harm?

Pure and configured from the dialogs (settings.yaml `crisis: keywords:`), one list per
language, each entry one of:

- a phrase, matched anywhere: ``不想活``, ``kill myself``. Latin words match whole words
  (``end it`` does not match "end items"); a trailing ``*`` matches any ending
  (``suicid*``: suicide, suicidal).
- words that may be apart, joined by ``…``: ``想…死`` matches "我真的很想很想死". The
  gap is at most a few characters (8 for Chinese, 25 otherwise) and never crosses the end
  of a sentence.
- a harmless lookalike, marked with a leading ``!``: ``!想死你``, ``!dead tired``. Its
  words are removed before the rest is looked for, so "想死你了" does not alarm while
  "想死你了，但我真的想死" still does.

Every language's entries apply to every message: people mix languages. The detector
errs towards showing the hotline: a false alarm costs a kind sentence, a miss may cost
a life.

Words only catch what someone says plainly. People we have never met say it around the
words: "我怕我会做傻事", "I keep imagining my funeral". So a learned classifier is a
second detector, OR-ed with the words: a message alarms when the words match or when
the classifier's probability reaches `THRESHOLD`. It learns at load from the examples
operators write in dialogs/crisis/examples.yaml (`crisis:` and `not_crisis:` per
language), with the cause stories of dialogs/examples/ as more ordinary messages. The
pipeline is the cause classifier's (bot/engine/classifier.py): TF-IDF over character
n-grams within word boundaries (Chinese needs no segmentation) and Latin word n-grams,
into a logistic regression with balanced class weights (the crisis examples are the
fewer). Pure: trained in memory, deterministic, cached in-process by the examples'
content. `cross_validate` measures it; bench/crisis_detect.py prints the figures.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bot.engine.textmodel import LinearTextModel, ModelCache, fit, make_pipeline

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from bot.spec.model import DialogSpec

__all__ = [
    "CLASSIFIER",
    "REPEAT_AFTER",
    "THRESHOLD",
    "CrisisConfig",
    "CrisisDetector",
    "CrisisModel",
    "CrossValidation",
    "cross_validate",
    "reply_due",
    "spec_examples",
    "train",
]

# How many user messages after a crisis reply the reply may be shown again. Fewer, and a
# long, painful exchange is answered by the same paragraph each time; none at all, and
# someone who comes back to it later in the conversation is not answered.
REPEAT_AFTER: Final = 5

NEAR: Final = "…"
HARMLESS: Final = "!"
PREFIX: Final = "*"
_NEAR_CJK: Final = 8
_NEAR_OTHER: Final = 25
_SENTENCE_END: Final = "。！？!?.\n"

# Taiwan and Hong Kong users write traditional characters; the ones the crisis words use
# are mapped to simplified so one list serves both.
_TRADITIONAL: Final = str.maketrans(
    "殺輕結東樓藥燒頂臺離開個這歲沒會還債錢絕覺與為麼說們遺書傷來過點氣連橋軌車撐機嗎對讓難脫決條農應該從聽話當帶將於後裡裏滅覺夠醒盡顆瓶劃見給撞親",
    "杀轻结东楼药烧顶台离开个这岁没会还债钱绝觉与为么说们遗书伤来过点气连桥轨车撑机吗对让难脱决条农应该从听话当带将于后里里灭觉够醒尽颗瓶划见给撞亲",
)


def _normalize(text: str) -> str:
    """NFKC, casefold, simplified characters, apostrophes dropped (don't = dont), hyphens as spaces."""
    normal = unicodedata.normalize("NFKC", text).casefold().translate(_TRADITIONAL)
    normal = normal.replace("’", "'").replace("'", "").replace("-", " ")
    normal = normal.replace("...", NEAR)  # what a phone types for "…"
    return " ".join(normal.split())


def _is_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


def _words(phrase: str) -> str:
    """A phrase as a regex: whole Latin words, any run of spaces between them."""
    prefix = phrase.endswith(PREFIX)
    phrase = phrase.rstrip(PREFIX).strip()
    body = r"\s+".join(re.escape(part) for part in phrase.split())
    if phrase[:1].isascii() and phrase[:1].isalnum():
        body = r"(?<![a-z0-9])" + body
    if not prefix and phrase[-1:].isascii() and phrase[-1:].isalnum():
        body += r"(?![a-z0-9])"
    return body


def _pattern(entry: str) -> str:
    parts = [part.strip() for part in entry.split(NEAR) if part.strip()]
    gap_size = _NEAR_CJK if _is_cjk(entry) else _NEAR_OTHER
    gap = rf"[^{re.escape(_SENTENCE_END)}]{{0,{gap_size}}}?"
    return gap.join(_words(part) for part in parts)


def _starts_latin(entry: str) -> bool:
    head = entry.lstrip(NEAR + " ")[:1]
    return head.isascii() and head.isalnum()


def _compile(entries: list[str], latin: bool) -> re.Pattern[str]:
    """One regex for many entries, cheap on long messages.

    A lookahead on the entries' first characters (and, for Latin words, on a word
    start) rejects most positions at once instead of trying every alternative at each.
    """
    first = re.escape("".join(sorted({e.lstrip(NEAR + " ")[0] for e in entries})))
    start = r"(?<![a-z0-9])" if latin else ""
    return re.compile(f"{start}(?=[{first}])(?:{'|'.join(f'(?:{_pattern(e)})' for e in entries)})")


@dataclass(frozen=True)
class CrisisConfig:
    """The crisis words: phrases and near-words that alarm, lookalikes that do not.

    Build it with `from_keywords` from the dialogs' `crisis: keywords:` lists.
    """

    alarms: tuple[str, ...] = ()
    harmless: tuple[str, ...] = ()

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Iterable[str]]) -> CrisisConfig:
        """Read the per-language lists: plain phrases, ``A…B`` near-words, ``!lookalike``."""
        alarms: list[str] = []
        harmless: list[str] = []
        for words in keywords.values():
            for raw in words:
                entry = _normalize(raw)
                if entry.startswith(HARMLESS):
                    if entry[1:].strip():
                        harmless.append(entry[1:].strip())
                elif entry.strip(NEAR + PREFIX + " "):
                    alarms.append(entry)
        return cls(tuple(alarms), tuple(harmless))


# Per language, the texts of one class: {"zh": (...), "en": (...)}.
ByLanguage = Mapping[str, Sequence[str]]

# The probability from which the classifier alarms on its own. Chosen on 5-fold
# cross-validation of the training examples (never on the test corpus) by one rule: the
# lowest threshold at which words OR classifier alarm on at most 5% of the ordinary
# examples (the test corpus's bar), i.e. the most recall that allows. Measured then:
# recall 0.73 on held-out crisis examples (the words alone: 0.32), false alarms 5.0%
# overall, 10% on the deliberately hard `not_crisis` lookalikes and 1.3% on the cause
# stories. bench/crisis_detect.py prints the curve and the rule's pick after an edit.
THRESHOLD: Final = 0.73
# What `matched` returns when only the classifier alarmed (no words to show).
CLASSIFIER: Final = "(classifier)"
# Light regularisation and n-grams seen twice, as the cause classifier. Cross-validated,
# C 10-100, unbalanced weights, char (2,4)/(1,4) or char-only features were within two
# points of recall at the same false alarms; this was best and trains in ~0.35 s.
_C: Final = 30.0
_MIN_DF: Final = 2
_WORD_PATTERN: Final = r"(?u)\b[a-z][a-z']*\b"
_FOLDS: Final = 5


def _lookalikes(harmless: Iterable[str]) -> re.Pattern[str] | None:
    # Longest first, so a lookalike is removed whole ("想死你了" before "想死你").
    entries = sorted(set(harmless), key=len, reverse=True)
    return re.compile("|".join(_pattern(h) for h in entries)) if entries else None


def _prepare(text: str, lookalikes: re.Pattern[str] | None) -> str:
    """The text as the words see it: normalized, harmless lookalikes set aside.

    A space, not nothing: "想死你了" must not join its neighbours into new words.
    """
    normal = _normalize(text)
    return lookalikes.sub(" ", normal) if lookalikes is not None else normal


def _fit(texts: Sequence[str], labels: Sequence[bool], lookalikes: re.Pattern[str] | None) -> Pipeline:
    # Balanced: the crisis examples are a fraction of the ordinary ones, and a miss costs
    # more than a false alarm.
    pipeline = make_pipeline(
        c=_C, min_df=_MIN_DF, word_pattern=_WORD_PATTERN, solver="liblinear", class_weight="balanced"
    )
    return fit(pipeline, [_prepare(t, lookalikes) for t in texts], labels)


def _flatten(crisis: ByLanguage, ordinary: ByLanguage) -> tuple[list[str], list[bool], list[str]]:
    texts: list[str] = []
    labels: list[bool] = []
    langs: list[str] = []
    for label, by_lang in ((True, crisis), (False, ordinary)):
        for lang, items in by_lang.items():
            texts.extend(items)
            labels.extend([label] * len(items))
            langs.extend([lang] * len(items))
    return texts, labels, langs


class CrisisModel:
    """The learned half of the detector: how likely a text speaks of suicide or self-harm."""

    def __init__(self, crisis: ByLanguage, ordinary: ByLanguage, harmless: Iterable[str] = ()) -> None:
        """Train on crisis and ordinary examples by language; `train` gives the cached one.

        `harmless`: the lookalikes of `CrisisConfig` ("想死你", "dead tired"), set aside
        before the classifier reads a text, as before the words are looked for.
        """
        texts, labels, _ = _flatten(crisis, ordinary)
        self._lookalikes = _lookalikes(harmless)
        self.pipeline = _fit(texts, labels, self._lookalikes)
        # detect() runs on every message: the pipeline's sums, done directly (textmodel.py).
        self._model = LinearTextModel(self.pipeline)
        self._yes = self._model.classes.index(True)

    def probability(self, text: str) -> float:
        """The probability that `text` speaks of suicide or self-harm (0 to 1)."""
        return self._model.probabilities(_prepare(text, self._lookalikes))[self._yes]


_CACHE = ModelCache()


def _fingerprint(crisis: ByLanguage, ordinary: ByLanguage, harmless: Sequence[str]) -> str:
    canonical = json.dumps(
        [
            {lang: list(items) for lang, items in crisis.items()},
            {lang: list(items) for lang, items in ordinary.items()},
            sorted(harmless),
        ],
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def train(crisis: ByLanguage, ordinary: ByLanguage, harmless: Iterable[str] = ()) -> CrisisModel | None:
    """The model for these examples, trained once per process; None without both kinds."""
    if not any(crisis.values()) or not any(ordinary.values()):
        return None
    lookalikes = tuple(harmless)
    key = _fingerprint(crisis, ordinary, lookalikes)
    return _CACHE.get(key, lambda: CrisisModel(crisis, ordinary, lookalikes))


def spec_examples(spec: DialogSpec) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """(crisis, ordinary) examples of a spec: its crisis examples, and as ordinary ones its
    `not_crisis` examples plus every cause's stories (what people usually write here)."""
    crisis = {lang: tuple(items) for lang, items in spec.crisis.examples.get("crisis", {}).items()}
    ordinary: dict[str, list[str]] = {
        lang: list(items) for lang, items in spec.crisis.examples.get("not_crisis", {}).items()
    }
    if crisis:  # cause stories alone teach nothing about crisis
        for cause in spec.causes:
            for lang, stories in cause.examples.items():
                ordinary.setdefault(lang, []).extend(stories)
    return crisis, {lang: tuple(items) for lang, items in ordinary.items()}


class CrisisDetector:
    """`detect(text)`: True when the text speaks of suicide or self-harm.

    The words of `config`, OR `model`'s probability at least `threshold`. Without a
    model, the words alone (as before the classifier existed).
    """

    def __init__(self, config: CrisisConfig, model: CrisisModel | None = None, threshold: float = THRESHOLD) -> None:
        self._harmless = _lookalikes(config.harmless)
        alarms = sorted(set(config.alarms), key=len, reverse=True)
        self._alarms = tuple(
            _compile(group, latin)
            for latin in (False, True)
            if (group := [a for a in alarms if _starts_latin(a) is latin])
        )
        self.model = model
        self.threshold = threshold

    @classmethod
    def from_spec(cls, spec: DialogSpec) -> CrisisDetector:
        """The detector a spec describes: settings.yaml's words, and the classifier trained
        on dialogs/crisis/examples.yaml plus the cause stories (cached: the same examples
        train once per process)."""
        config = CrisisConfig.from_keywords(spec.crisis.keywords)
        return cls(config, train(*spec_examples(spec), config.harmless))

    def detect(self, text: str) -> bool:
        """True when `text` has crisis words (once harmless lookalikes are set aside) or the
        classifier is sure enough."""
        return self.matched(text) is not None

    def matched(self, text: str) -> str | None:
        """The words that alarmed, `CLASSIFIER` when only the classifier did, or None.

        For tests and tuning; never log them.
        """
        if not text:
            return None
        if words := self.words(text):
            return words
        if self.model is not None and _substantial(text) and self.model.probability(text) >= self.threshold:
            return CLASSIFIER
        return None

    def words(self, text: str) -> str | None:
        """The crisis words in `text`, the classifier aside, or None."""
        if not self._alarms or not text:
            return None
        normal = _prepare(text, self._harmless)
        for alarm in self._alarms:
            if found := alarm.search(normal):
                return found[0]
        return None


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold classifier probabilities for every training example, with whether the
    words alone catch it: what the detector would do on messages it never learned from."""

    texts: tuple[str, ...]
    labels: tuple[bool, ...]  # True: a crisis example
    langs: tuple[str, ...]
    probabilities: tuple[float, ...]
    by_words: tuple[bool, ...]

    def rates(
        self, threshold: float, lang: str | None = None, words: bool = True, among: Container[str] | None = None
    ) -> tuple[float, float]:
        """(recall on crisis examples, false-alarm rate on ordinary ones) at `threshold`.

        `lang`: one language only; `words=False`: the classifier alone; `among`: only
        these texts (e.g. the `not_crisis` examples without the cause stories).
        """
        found = [0, 0]
        total = [0, 0]
        rows = zip(self.texts, self.labels, self.langs, self.probabilities, self.by_words, strict=True)
        for text, label, lg, p, w in rows:
            if (lang is None or lg == lang) and (among is None or text in among):
                total[label] += 1
                found[label] += p >= threshold or (words and w)
        return found[True] / max(total[True], 1), found[False] / max(total[False], 1)

    def threshold_for(self, max_false_alarms: float) -> float:
        """The lowest threshold (in hundredths) at which words OR classifier alarm on at
        most `max_false_alarms` of the ordinary examples: the most recall that allows."""
        for hundredths in range(1, 100):
            if self.rates(hundredths / 100)[1] <= max_false_alarms:
                return hundredths / 100
        return 1.0


def cross_validate(detector: CrisisDetector, crisis: ByLanguage, ordinary: ByLanguage) -> CrossValidation:
    """Stratified 5-fold cross-validation (by class and language), with a fixed shuffle."""
    from sklearn.model_selection import StratifiedKFold

    texts, labels, langs = _flatten(crisis, ordinary)
    lookalikes = detector._harmless
    probabilities = [0.0] * len(texts)
    strata = [f"{label}|{lang}" for label, lang in zip(labels, langs, strict=True)]
    splitter = StratifiedKFold(n_splits=_FOLDS, shuffle=True, random_state=0)
    for train_at, test_at in splitter.split(texts, strata):
        pipeline = _fit([texts[i] for i in train_at], [labels[i] for i in train_at], lookalikes)
        column = list(pipeline.classes_).index(True)
        held_out = pipeline.predict_proba([_prepare(texts[i], lookalikes) for i in test_at])
        for i, row in zip(test_at, held_out, strict=True):
            probabilities[int(i)] = float(row[column])
    by_words = tuple(detector.words(t) is not None for t in texts)
    return CrossValidation(tuple(texts), tuple(labels), tuple(langs), tuple(probabilities), by_words)


# Below this many letters (Latin or CJK) a message is an answer ("是", "两万", "45 days"),
# not a thought: the words above still read it, the classifier does not need to. The
# shortest crisis phrasings ("想死", "kms", "不想活") are all in the word list.
_MIN_LETTERS_FOR_MODEL: Final = 5


def _substantial(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= _MIN_LETTERS_FOR_MODEL


def reply_due(messages_since_last_reply: int | None, repeat_after: int = REPEAT_AFTER) -> bool:
    """Whether crisis words get the crisis reply now.

    `messages_since_last_reply` counts the user's messages since the reply was last
    shown (None: never in this conversation). The first time always; again once
    `repeat_after` messages have passed, so the reply comes back when the person does,
    without repeating it on every message of a long exchange.
    """
    return messages_since_last_reply is None or messages_since_last_reply >= repeat_after
