"""The diagnosis: priors with no evidence, and typical descriptions ranking their cause first."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from bot.engine.diagnosis import Diagnoser
from bot.engine.engine import Engine
from bot.engine.events import Chose, Said, Start
from bot.spec.conditions import parse_condition
from bot.spec.examples import model_key
from bot.spec.model import Cause, Evidence
from tests.support.cli import run_bot

PRIORS = {
    "unstable_income": 0.30,
    "missed_reminder": 0.25,
    "impulsive_spending": 0.20,
    "other_debts": 0.15,
    "poor_money_management": 0.10,
}

# Descriptions as people write them, not copies of the keyword lists.
DESCRIPTIONS: dict[str, dict[str, list[str]]] = {
    "unstable_income": {
        "zh": [
            "今年三月公司裁员，我失业了，到现在还没找到工作，所以还不上。",
            "老板拖欠工资两个月了，手上一点钱都没有",
            "疫情后生意不好，店里收入减少了一大半",
            "我被辞退了，每个月的收入一下子没了",
            "单位降薪，工资降了三成，房租一交就不够还卡了",
        ],
        "en": [
            "I was laid off in March and haven't found a new job yet.",
            "My employer has not paid wages for two months, unpaid wages everywhere.",
            "I lost my job and have had no income since.",
            "Business is slow this year and my income dropped a lot.",
            "They gave everyone a pay cut and I can't cover the card anymore.",
        ],
    },
    "missed_reminder": {
        "zh": [
            "我完全忘了还款日，等发现的时候已经过了好几天",
            "换了手机号，没收到提醒短信，就错过了",
            "记错日子了，以为是月底还款",
            "出差太忙没注意到账单，不是没钱",
        ],
        "en": [
            "I simply forgot the due date, I had the money.",
            "I changed my phone number and never got a reminder from the bank.",
            "I got the date wrong and thought it was due at the end of the month.",
            "I was travelling and didn't notice the bill until it was late.",
        ],
    },
    "impulsive_spending": {
        "zh": [
            "双十一买买买，一下子刷爆了，还不上了",
            "控制不住自己，在直播间冲动消费了很多",
            "最近剁手太多，买了好多用不上的东西",
            "看到喜欢的就下单，花呗越花越多",
        ],
        "en": [
            "I went on a shopping spree during the sales and overspent.",
            "Impulse buys on livestream shopping got out of hand.",
            "I kept buying things I didn't need, I can't stop shopping.",
            "I bought a new phone and clothes on a whim and now I can't pay.",
        ],
    },
    "other_debts": {
        "zh": [
            "我同时有好几张卡，还有网贷，每个月要还的太多了",
            "一直以贷养贷，拆东墙补西墙，现在周转不过来了",
            "借呗、网贷、信用卡都要还，压力太大",
            "房贷车贷加上几笔网贷，工资全拿去还债了",
        ],
        "en": [
            "I have several loans and three credit cards to pay every month.",
            "I borrowed to repay other loans and now it has all collapsed.",
            "Between my car loan, my mortgage and online loans, the payments are too much.",
            "I'm juggling multiple debts and can't keep up with all of them.",
        ],
    },
    "poor_money_management": {
        "zh": [
            "我从来不记账，也不知道钱都花到哪里去了",
            "每个月都是月光族，没有任何预算",
            "我不会理财，没有存款，也没做过还款计划",
            "钱来了就花，从没想过要规划一下",
        ],
        "en": [
            "I never budget and have no idea where the money goes.",
            "I don't track my spending at all and live paycheck to paycheck.",
            "I've never made a plan for my money, no budget, no savings.",
            "Honestly I'm bad with money and never kept track of anything.",
        ],
    },
}


def test_no_evidence_returns_exactly_the_priors(engine: Engine) -> None:
    ranking = engine.assess({})
    assert {a.cause.id: a.probability for a in ranking} == pytest.approx(PRIORS, abs=1e-12)
    assert [a.cause.id for a in ranking] == list(PRIORS)


@pytest.mark.parametrize(
    ("cause", "lang", "text"),
    [
        (cause, lang, text)
        for cause, by_lang in DESCRIPTIONS.items()
        for lang, texts in by_lang.items()
        for text in texts
    ],
)
def test_a_typical_description_ranks_its_cause_first(engine: Engine, cause: str, lang: str, text: str) -> None:
    story = [e.key for e in engine.diagnoser.read_story(text)]
    ranking = engine.assess({"story": story})
    assert ranking[0].cause.id == cause, [(a.cause.id, round(a.probability, 3)) for a in ranking]
    assert sum(a.probability for a in ranking) == pytest.approx(1)


def test_answers_are_evidence_too(engine: Engine) -> None:
    assert engine.assess({"knew_due_date": False, "income_stable": True})[0].cause.id == "missed_reminder"
    assert engine.assess({"other_loans": "three_plus"})[0].cause.id == "other_debts"


def _diagnose(*args: str) -> subprocess.CompletedProcess[str]:
    return run_bot("diagnose", *args)


def test_diagnose_command_prints_sorted_json() -> None:
    result = _diagnose("--lang", "zh", "--text", "忘了还款日，没收到提醒", "--answer", "income_stable=是")
    assert result.returncode == 0, result.stderr
    causes = json.loads(result.stdout)["causes"]
    assert causes[0]["id"] == "missed_reminder"
    probabilities = [c["probability"] for c in causes]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1, abs=1e-5)


def test_diagnose_command_with_nothing_prints_the_priors() -> None:
    result = _diagnose("--lang", "en")
    causes = {c["id"]: c["probability"] for c in json.loads(result.stdout)["causes"]}
    assert causes == PRIORS


def test_diagnose_command_refuses_an_unknown_slot_clearly() -> None:
    result = _diagnose("--answer", "salary=lots")
    assert result.returncode == 2
    assert "unknown slot 'salary'" in result.stderr


# ------------------------------------------------------------------ the classifier as evidence


class FixedReading:
    """A stand-in classifier that reads every story the same way (to test the thresholds)."""

    def __init__(self, **probabilities: float) -> None:
        self.causes = tuple(PRIORS)
        rest = (1 - sum(probabilities.values())) / (len(PRIORS) - len(probabilities))
        self._p = {cause: probabilities.get(cause, rest) for cause in PRIORS}

    def probabilities(self, text: str) -> dict[str, float]:
        return dict(self._p)


@pytest.fixture
def fresh_engine() -> Engine:
    """An engine of its own (the trained model is shared: same examples, same process)."""
    from bot.runtime import build_engine

    return build_engine()[0]


@pytest.mark.parametrize("text", ["你好", "嗯", "ok", "hello", "。。。", "???", "  ", "逾期"])
def test_a_story_with_no_signal_leaves_exactly_the_priors(engine: Engine, text: str) -> None:
    assert engine.diagnoser.read_story(text) == []
    ranking = engine.assess({"story": []})
    assert {a.cause.id: a.probability for a in ranking} == pytest.approx(PRIORS, abs=1e-12)


@pytest.mark.parametrize(
    ("cause", "text"),
    [
        ("unstable_income", "厂里最近没什么订单，老板让我们轮流在家休息"),
        ("missed_reminder", "绑定的那张卡过期了，自动扣款没扣成，我一点都不知道"),
        ("impulsive_spending", "晚上睡不着就刷抖音，主播一喊我就点了，快递堆了一屋"),
        ("other_debts", "用这张卡还那张卡，现在哪张都转不动了"),
        ("unstable_income", "The gig app gives me way fewer orders than last year"),
        ("missed_reminder", "my phone was in repair for a week when the bill came"),
    ],
)
def test_a_story_without_keywords_is_read_by_the_classifier(engine: Engine, cause: str, text: str) -> None:
    evidence = engine.diagnoser.read_story(text)
    assert evidence, text
    assert all("/model" in e.key for e in evidence)  # no keyword matched: the classifier alone
    ranking = engine.assess({"story": [e.key for e in evidence]})
    assert ranking[0].cause.id == cause
    # …and the ranking says why, in the words of the cause's `classifier:` block
    block = next(e for e in engine.spec.cause(cause).evidence if e.key == model_key(cause))
    assert ranking[0].evidence[0].reason == block.reason


def test_the_story_keeps_figures_never_words(engine: Engine) -> None:
    text = "老板跑了，工资两个月没发，我forgot还款日"
    keys = [e.key for e in engine.diagnoser.read_story(text)]
    assert keys
    for key in keys:
        assert re.fullmatch(r"[a-z_]+/(\d+|model(:[01]\.\d\d)?)", key), key


def test_answers_still_combine_with_the_classifier_reading(engine: Engine) -> None:
    story = [e.key for e in engine.diagnoser.read_story("晚上睡不着就刷抖音，主播一喊我就点了，快递堆了一屋")]
    alone = {a.cause.id: a.probability for a in engine.assess({"story": story})}
    denied = {a.cause.id: a.probability for a in engine.assess({"story": story, "impulse_shopping": False})}
    assert denied["impulsive_spending"] < alone["impulsive_spending"]
    assert sum(denied.values()) == pytest.approx(1)


def test_an_unsure_reading_adds_nothing(fresh_engine: Engine) -> None:
    fresh_engine.diagnoser.classifier = FixedReading(other_debts=0.45)  # type: ignore[assignment]
    assert fresh_engine.diagnoser.read_story("zzz zzz zzz") == []


def test_only_a_sure_reading_answers_a_question(fresh_engine: Engine) -> None:
    def next_question_after_story(reading: FixedReading) -> str:
        fresh_engine.diagnoser.classifier = reading  # type: ignore[assignment]
        turn = fresh_engine.handle(fresh_engine.new_session("en"), Start("en"))
        for item in [1, 2, "45 days", "15000", "zzz zzz zzz"]:
            event = Chose(turn.session.version, item - 1) if isinstance(item, int) else Said(item)
            turn = fresh_engine.handle(turn.session, event)
        assert turn.question is not None
        return turn.question.state

    # Likely (0.7) moves the ranking but the income question is still asked…
    assert next_question_after_story(FixedReading(unstable_income=0.7)) == "income"
    # …sure (0.95) answers it, as a keyword with `fills:` would.
    assert next_question_after_story(FixedReading(unstable_income=0.95)) == "reminder"


def test_a_reading_moves_the_ranking_by_a_capped_likelihood_ratio(fresh_engine: Engine) -> None:
    fresh_engine.diagnoser.classifier = FixedReading(poor_money_management=0.96)  # type: ignore[assignment]
    keys = [e.key for e in fresh_engine.diagnoser.read_story("zzz zzz zzz")]
    ranking = {a.cause.id: a.probability for a in fresh_engine.assess({"story": keys})}
    # 5 × 0.96 is capped at 4; the others' 5 × 0.01 floored at 1/2
    weights = {c: p * (4 if c == "poor_money_management" else 0.5) for c, p in PRIORS.items()}
    total = sum(weights.values())
    assert ranking == pytest.approx({c: w / total for c, w in weights.items()}, abs=1e-9)


def test_ties_keep_the_order_of_the_causes_never_floating_point() -> None:
    def cause(cause_id: str, prior: float, ratio: float) -> Cause:
        evidence = Evidence(f"{cause_id}/1", ratio, when=parse_condition("x == 1"))
        return Cause(cause_id, cause_id, prior, (evidence,))

    # 0.1 × 3 is 0.30000000000000004 in floating point: more than 0.3 × 1, by accident only
    causes = [cause("first", 0.3, 1.0), cause("second", 0.1, 3.0), cause("third", 0.6, 0.5)]
    for order in (causes, causes[::-1]):
        ranking = Diagnoser(order).rank({"x": 1})
        tied = [a.cause.id for a in ranking if a.cause.id in ("first", "second")]
        expected = [c.id for c in order if c.id in ("first", "second")]
        assert tied == expected
