"""Crisis safety: the dialogs' crisis detector against a corpus of real-sounding phrasings.

The detector is the words of dialogs/settings.yaml OR the classifier trained on
dialogs/crisis/examples.yaml. The corpus (tests/data/crisis_corpus.yaml) was written
before the words were tuned and was never used to train the classifier. Every crisis
phrasing must get the hotline; at most 5% of the everyday lookalikes ("笑死", "this is
killing me") may.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bot.engine.crisis import (
    CLASSIFIER,
    REPEAT_AFTER,
    THRESHOLD,
    CrisisConfig,
    CrisisDetector,
    CrisisModel,
    cross_validate,
    reply_due,
    spec_examples,
)
from bot.spec.loader import SpecError, load_dialogs
from bot.spec.model import DialogSpec

ROOT = Path(__file__).resolve().parent.parent
CORPUS: dict[str, Any] = yaml.safe_load((ROOT / "tests" / "data" / "crisis_corpus.yaml").read_text(encoding="utf-8"))
UNSEEN_2: dict[str, Any] = yaml.safe_load(
    (ROOT / "tests" / "data" / "crisis_unseen_2.yaml").read_text(encoding="utf-8")
)
MAX_FALSE_ALARMS = 0.05


@pytest.fixture(scope="module")
def spec() -> DialogSpec:
    # The dialogs as the bot loads them, not a copy: the test checks what operators ship.
    return load_dialogs(ROOT / "dialogs")


@pytest.fixture(scope="module")
def detector(spec: DialogSpec) -> CrisisDetector:
    return CrisisDetector.from_spec(spec)


@pytest.fixture(scope="module")
def words(spec: DialogSpec) -> CrisisDetector:
    """The words alone, for the tests of how they match."""
    return CrisisDetector(CrisisConfig.from_keywords(spec.crisis.keywords))


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS["crisis"]["zh"]) >= 60
    assert len(CORPUS["crisis"]["en"]) >= 60
    assert len(CORPUS["harmless"]["zh"]) >= 20
    assert len(CORPUS["harmless"]["en"]) >= 20


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_crisis_phrasing_gets_the_hotline(detector: CrisisDetector, lang: str) -> None:
    missed = [text for text in CORPUS["crisis"][lang] if not detector.detect(text)]
    assert missed == [], f"recall {1 - len(missed) / len(CORPUS['crisis'][lang]):.0%}; missed: {missed}"


def test_everyday_lookalikes_rarely_alarm(detector: CrisisDetector) -> None:
    harmless = CORPUS["harmless"]["zh"] + CORPUS["harmless"]["en"]
    alarmed = [(text, detector.matched(text)) for text in harmless if detector.detect(text)]
    assert len(alarmed) / len(harmless) <= MAX_FALSE_ALARMS, alarmed


@pytest.mark.parametrize(
    "text",
    [
        "想死你了，但我真的想死",  # a lookalike does not hide real crisis words beside it
        "this job is killing me and I want to kill myself",
        "我真的不想活了",
        "我真的不想再活下去了",
        "I'm thinking about ending my life",
        "我想…死",  # what a phone types for …
        "我想...死",
        "I DON’T WANT TO LIVE",  # capitals and a curly apostrophe
        "我不想活了😭",
        "不想活了！！！",
        "我真的不想活了。",
        "我真的不想活了，欠了十万",
        "我想自殺",  # traditional characters
        "我想跳樓",
    ],
)
def test_spelling_and_company_do_not_hide_crisis_words(words: CrisisDetector, text: str) -> None:
    assert words.detect(text)


@pytest.mark.parametrize(
    "text",
    [
        "两个月",
        "15000",
        "我失业了，收入不稳定",
        "I forgot the due date",
        "想了想，还是先还最低还款额",  # 想 and 死 are not near: no 死 at all
        "我想死磕到底，把债还完",  # "死磕": to stick at it
        "我想知道。死线是下周",  # 想…死 never across the end of a sentence
        "end items on my list",  # "end it" is whole words only
    ],
)
def test_ordinary_answers_have_no_crisis_words(words: CrisisDetector, text: str) -> None:
    assert not words.detect(text)


@pytest.mark.parametrize(
    "text",
    [
        # answers to the bot's questions
        "两个月",
        "三四个月",
        "1.5万",
        "15000",
        "是的",
        "不是",
        "yes",
        "no",
        "about 3 months",
        "skip",
        # distress without death or self-harm in it: helped with the debt, no hotline
        "压力好大",
        "我快崩溃了",
        "I'm so stressed",
        "this debt is killing me",
        # stories
        "我失业了，收入不稳定",
        "I forgot the due date",
        "我想死磕到底，把债还完",
    ],
)
def test_ordinary_messages_do_not_get_the_hotline(detector: CrisisDetector, text: str) -> None:
    assert not detector.detect(text), detector.matched(text)


@pytest.mark.parametrize(
    "text",
    [
        "我怕我会做傻事",
        "我把遗言都录好了",
        "I'm thinking of doing something stupid tonight",
        "活不下去了",  # can't go on living: alarms, unlike "我快崩溃了"
    ],
)
def test_the_classifier_alone_catches_coded_phrasings(detector: CrisisDetector, text: str) -> None:
    assert detector.model is not None
    assert detector.model.probability(text) >= THRESHOLD
    assert detector.detect(text)


def test_coded_phrasings_the_words_miss_get_the_hotline(detector: CrisisDetector, words: CrisisDetector) -> None:
    coded = ["我怕我会做傻事", "我把遗言都录好了", "I'm thinking of doing something stupid tonight"]
    assert [words.detect(t) for t in coded] == [False, False, False]  # why the classifier exists
    assert [detector.matched(t) for t in coded] == [CLASSIFIER] * 3


def test_cross_validated_figures(spec: DialogSpec, detector: CrisisDetector) -> None:
    """Held-out folds of the training examples: the classifier must add recall to the
    words, and ordinary stories must rarely alarm (measured: recall 0.73 against 0.32
    for the words alone; false alarms 5.0%, 1.3% on the cause stories)."""
    crisis, ordinary = spec_examples(spec)
    result = cross_validate(detector, crisis, ordinary)
    own = {t for items in spec.crisis.examples["not_crisis"].values() for t in items}
    stories = {t for items in ordinary.values() for t in items} - own
    recall, alarms = result.rates(THRESHOLD)
    words_recall, _ = result.rates(1.01)  # no probability reaches it: the words alone
    assert recall >= words_recall + 0.3
    assert alarms <= 0.06
    assert result.rates(THRESHOLD, among=stories)[1] <= 0.02


def test_a_sample_of_cause_stories_does_not_alarm(spec: DialogSpec, detector: CrisisDetector) -> None:
    # The stories are among the ordinary examples the classifier learns from; this guards
    # the wiring (stories read as ordinary, not crisis), the figure above measures it.
    stories = [s for cause in spec.causes for items in cause.examples.values() for s in items[::10]]
    assert len(stories) >= 40
    alarmed = [s for s in stories if detector.detect(s)]
    assert alarmed == []


@pytest.mark.parametrize(
    "story",
    [
        "上个月厂里放假，工资只发了一半，房贷和信用卡撞一起了",
        "老公做生意周转不开，用我的卡刷了好几笔",
        "双十一囤了一堆东西，账单出来傻眼了",
        "my hours got cut at the warehouse and rent ate everything",
        "I moved and the statements kept going to my old flat",
        "my son needed braces and I put it all on the card",
    ],
)
def test_new_cause_stories_do_not_alarm(detector: CrisisDetector, story: str) -> None:
    # Written for this test, in no training file.
    assert not detector.detect(story), detector.matched(story)


def test_training_is_deterministic(spec: DialogSpec) -> None:
    crisis, ordinary = spec_examples(spec)
    first, second = CrisisModel(crisis, ordinary), CrisisModel(crisis, ordinary)  # not the cached one
    texts = ["我怕我会做傻事", "两个月", "I keep imagining my funeral", "压力好大"]
    assert [first.probability(t) for t in texts] == [second.probability(t) for t in texts]


def test_unseen_phrasings_figure(detector: CrisisDetector) -> None:
    """Phrasings written after the words were final (round 4): a reported figure.

    Measured when written, words alone: 12 of 20 found (zh 4/10, en 8/10), 0 of 10
    lookalikes. With the classifier (never trained on them, though the brief that asked
    for it quoted four of them): 18 of 20, 1 of 10 lookalikes. The floor only guards
    against a change that makes it worse; tuning on these phrasings would make the
    figure meaningless: add new ones instead (see the corpus file).
    """
    crisis = CORPUS["unseen"]["crisis"]
    harmless = CORPUS["unseen"]["harmless"]
    found = sum(detector.detect(text) for text in crisis)
    alarms = sum(detector.detect(text) for text in harmless)
    print(f"unseen: {found}/{len(crisis)} crisis found, {alarms}/{len(harmless)} lookalikes alarmed")
    assert found >= 18
    assert alarms <= 1


def test_second_unseen_round_figure(detector: CrisisDetector) -> None:
    """tests/data/crisis_unseen_2.yaml, written after THRESHOLD was fixed: a reported figure.

    Measured when written: 14 of 20 found (zh 6/10, en 8/10; the words alone: 4/20), 1
    of 20 lookalikes alarmed (by the words, "giving away my"). Non-regression only.
    """
    crisis, harmless = UNSEEN_2["crisis"], UNSEEN_2["harmless"]
    assert len(crisis) == len(harmless) == 20
    found = sum(detector.detect(text) for text in crisis)
    alarms = sum(detector.detect(text) for text in harmless)
    print(f"unseen 2: {found}/{len(crisis)} crisis found, {alarms}/{len(harmless)} lookalikes alarmed")
    assert found >= 14
    assert alarms <= 1


def test_harmless_entries_and_near_words_are_read_from_the_lists() -> None:
    config = CrisisConfig.from_keywords({"zh": ["想…死", "!想死你"], "en": ["suicid*", "end it"]})
    detector = CrisisDetector(config)
    assert detector.detect("我很想很想死")
    assert not detector.detect("想死你了")
    assert detector.detect("suicidal thoughts")
    assert detector.detect("I'll end it.")
    assert not detector.detect("I'll end items")
    assert not CrisisDetector(CrisisConfig()).detect("我想死")  # no words, no alarm


_SMALL = CrisisDetector(
    CrisisConfig.from_keywords({"zh": ["想…死", "!想死你", "不想活"], "en": ["suicid*", "want…die"]})
)


@given(
    st.one_of(
        st.text(max_size=300), st.lists(st.sampled_from(["想", "死", "你", "…", "。", " ", "want", "die"])).map("".join)
    )
)
def test_detect_never_raises(text: str) -> None:
    assert _SMALL.detect(text) in (True, False)


def test_the_reply_comes_back_but_not_on_every_message() -> None:
    assert reply_due(None)  # the first time, always
    assert not reply_due(0)
    assert not reply_due(REPEAT_AFTER - 1)
    assert reply_due(REPEAT_AFTER)


def test_without_examples_the_words_work_alone(dialogs_copy: Path) -> None:
    (dialogs_copy / "crisis" / "examples.yaml").unlink()
    spec = load_dialogs(dialogs_copy)
    detector = CrisisDetector.from_spec(spec)
    assert detector.model is None
    assert detector.detect("我不想活了")
    assert not detector.detect("我怕我会做傻事")  # only the classifier knew this one


def test_a_malformed_examples_file_is_located(dialogs_copy: Path) -> None:
    (dialogs_copy / "crisis" / "examples.yaml").write_text(
        "crisis:\n  zh:\n    - 我想死\n    - 我想死\n  en: not a list\nnot_crisis:\n  en:\n    - yes\nextra: 1\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as raised:
        load_dialogs(dialogs_copy)
    problems = "\n".join(raised.value.problems)
    assert "crisis/examples.yaml:4:7: this example is written twice (also at" in problems
    assert "crisis/examples.yaml:5:7: 'crisis' in 'en' must be a list" in problems
    assert "crisis/examples.yaml:8:7: not a text; write it in quotes" in problems
    assert "crisis/examples.yaml:9:1: unknown key 'extra'" in problems
    assert "crisis/examples.yaml:2:3: 'crisis' has 1 example(s) in 'zh'" in problems


def test_the_fast_path_is_the_pipeline(detector: CrisisDetector) -> None:
    # probability() sums the weights itself (speed); it must be what scikit-learn says.
    from bot.engine.crisis import _prepare

    model = detector.model
    assert model is not None
    texts = [*CORPUS["unseen"]["crisis"], *CORPUS["unseen"]["harmless"], "", "两个月", "KMS!!", "我想…死"]
    expected = model.pipeline.predict_proba([_prepare(t, model._lookalikes) for t in texts])[:, 1]
    assert [model.probability(t) for t in texts] == pytest.approx(list(expected), abs=1e-9)
