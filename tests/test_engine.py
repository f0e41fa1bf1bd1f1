"""Stepping conversations through the real dialogs with the pure engine."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bot.channels.terminal import render_turn
from bot.engine.engine import Engine
from bot.engine.events import Chose, Command, CommandName, Event, Said, Start
from bot.engine.session import Session
from bot.engine.turn import Phrase, Ranking, Say, Tone, Turn
from bot.i18n.catalog import Localizer
from bot.spec.loader import load_dialogs


def start(engine: Engine, locale: str = "en") -> Turn:
    return engine.handle(engine.new_session(locale), Start(locale))


def play(engine: Engine, turn: Turn, *inputs: str | int) -> Turn:
    """Feed typed texts (str) or button presses (int, 1-based) in order."""
    for item in inputs:
        event: Event = Chose(turn.session.version, item - 1) if isinstance(item, int) else Said(item)
        turn = engine.handle(turn.session, event)
    return turn


def test_start_greets_and_asks_the_role(engine: Engine, localizer: Localizer) -> None:
    turn = start(engine, "en")
    text = render_turn(turn, localizer)
    assert "I am Overdue Advisor" in text
    assert turn.question is not None and turn.question.state == "role"
    assert [localizer.text(o.label, "en") for o in turn.question.options] == [
        "I have an overdue repayment",
        "I am bank staff helping an overdue customer",
    ]


def test_typed_answers_move_like_buttons(engine: Engine) -> None:
    by_buttons = play(engine, start(engine), 1, 1)
    by_typing = play(engine, start(engine, "zh_CN"), "持卡人", "信用卡")
    assert by_buttons.session.state == by_typing.session.state == "days"
    assert by_typing.session.slots["product"] == "credit_card"
    # the option number typed, and the label in the other language
    assert play(engine, start(engine), "1", "花呗").session.slots["product"] == "huabei"


@pytest.mark.parametrize(("typed", "days"), [("45", 45), ("两个月", 60), ("about 2 months", 60), ("3 weeks", 21)])
def test_days_typed_in_many_ways(engine: Engine, typed: str, days: int) -> None:
    turn = play(engine, start(engine), 1, 1, typed)
    assert turn.session.state == "amount"
    assert turn.session.slots["days_overdue"] == days


@pytest.mark.parametrize(
    ("typed", "amount"), [("15000", 15000), ("1.5万", 15000), ("两万三", 23000), ("3k", 3000), ("¥8,000", 8000)]
)
def test_money_typed_in_many_ways(engine: Engine, typed: str, amount: int) -> None:
    turn = play(engine, start(engine), 1, 1, "45", typed)
    assert turn.session.state == "story"
    assert turn.session.slots["amount"] == amount


def test_unparsable_answer_reprompts_and_stays(engine: Engine, localizer: Localizer) -> None:
    before = play(engine, start(engine), 1, 1)
    after = engine.handle(before.session, Said("a while"))
    assert after.changed is False
    assert after.session == before.session
    warning = [b for b in after.blocks if isinstance(b, Say) and b.tone is Tone.WARNING]
    assert localizer.text(warning[0].text, "en") == "I need a number of days, e.g. 45 or 两个月."
    assert after.question is not None and after.question.state == "days"


def test_out_of_range_names_the_range(engine: Engine, localizer: Localizer) -> None:
    before = play(engine, start(engine), 1, 1)
    after = engine.handle(before.session, Said("20000 days"))
    assert after.session.state == "days"
    assert "between 0 days and 3,650 days" in render_turn(after, localizer)


def test_back_returns_to_the_previous_question_and_forgets_its_answer(engine: Engine) -> None:
    turn = play(engine, start(engine), 1, 1, "45")
    assert turn.session.state == "amount"
    back = engine.handle(turn.session, Command(CommandName.BACK))
    assert back.session.state == "days"
    assert "days_overdue" not in back.session.slots
    assert back.question is not None and back.question.state == "days"
    # back across flows: from the first cardholder question to the role question
    back = engine.handle(engine.handle(back.session, Command(CommandName.BACK)).session, Command(CommandName.BACK))
    assert (back.session.flow, back.session.state) == ("start", "role")
    nothing = engine.handle(back.session, Command(CommandName.BACK))
    assert nothing.session.state == "role"
    assert any(b.tone is Tone.WARNING for b in nothing.blocks if isinstance(b, Say))


def test_restart_starts_over_in_the_same_language(engine: Engine) -> None:
    turn = play(engine, start(engine, "zh_CN"), 1, 1, "45")
    again = engine.handle(turn.session, Command(CommandName.RESTART))
    assert (again.session.flow, again.session.state, again.session.slots) == ("start", "role", {})
    assert again.session.locale == "zh_CN"


def test_language_switch_mid_conversation_re_asks_in_the_new_language(engine: Engine, localizer: Localizer) -> None:
    turn = play(engine, start(engine, "zh_CN"), 1, 1)
    zh = render_turn(turn, localizer)
    switched = engine.handle(turn.session, Command(CommandName.LANGUAGE))
    en = render_turn(switched, localizer)
    assert switched.session.locale == "en" and switched.session.state == "days"
    assert "How many days is it overdue?" in en and "How many days" not in zh
    assert "OK, I will speak English from now on." in en
    assert engine.handle(switched.session, Command(CommandName.LANGUAGE, "zh")).session.locale == "zh_CN"
    # answers keep working in either language after the switch
    assert play(engine, switched, "两个月").session.slots["days_overdue"] == 60


def test_stale_and_forged_buttons_change_nothing(engine: Engine, localizer: Localizer) -> None:
    first = play(engine, start(engine), 1)
    later = play(engine, first, 2)  # answered "Huabei"
    assert not later.stale
    for event in (Chose(first.session.version, 0), Chose(later.session.version, 99), Chose(-5, -1)):
        stale = engine.handle(later.session, event)
        assert stale.stale and stale.changed is False and stale.session == later.session
        assert "This question has moved on" in render_turn(stale, localizer)
        assert stale.question is not None and stale.question.state == "days"


def test_crisis_words_get_help_first_and_the_conversation_goes_on(engine: Engine, localizer: Localizer) -> None:
    turn = play(engine, start(engine, "zh_CN"), 1, 1)
    crisis = engine.handle(turn.session, Said("我真的不想活了"))
    assert isinstance(crisis.blocks[0], Say) and crisis.blocks[0].tone is Tone.URGENT
    assert "12356" in localizer.text(crisis.blocks[0].text, "zh_CN")
    assert crisis.question is not None and crisis.question.state == "days"
    assert play(engine, crisis, "两个月").session.state == "amount"


def test_story_fills_questions_that_no_longer_need_asking(engine: Engine) -> None:
    turn = play(engine, start(engine), 1, 1, "60", "20000", "I lost my job in March and my savings ran out")
    assert turn.session.slots["income_stable"] is False
    assert turn.question is not None and turn.question.state != "income"


def test_a_session_whose_state_was_removed_recovers(engine: Engine, localizer: Localizer) -> None:
    ghost = Session(flow="cardholder", state="removed_by_operator", locale="en", version=7)
    turn = engine.handle(ghost, Said("hello"))
    assert (turn.session.flow, turn.session.state) == ("start", "role")
    assert turn.session.version > 7
    assert "we start again from the beginning" in render_turn(turn, localizer)


def test_a_full_conversation_reaches_the_plan(engine: Engine, localizer: Localizer) -> None:
    turn = play(engine, start(engine), 1, 1, "45", "20000", "skip", "no", "yes", "no", "none", "yes")
    # The plan opens with a short summary and a menu: a point reached, not an end.
    assert "plan" in turn.milestones and not turn.finished
    assert not any(isinstance(b, Ranking) for b in turn.blocks)  # no ranking bars in the plan
    text = render_turn(turn, localizer)
    assert "Your plan in short. What most probably led to this: Unstable income." in text
    assert "You said your income has not been stable." in text  # the person's own evidence
    assert "Credit card, 45 days overdue, about CN¥20,000.00." in text
    assert "The one thing to do today: call your bank" in text
    assert "***" not in text and "{" not in text
    assert turn.question is not None and turn.question.state == "menu_summary"
    assert "Shall we go through the plan, one step at a time?" in text
    assert [localizer.text(o.label, "en") for o in turn.question.options] == ["Next step", "What to say", "Calculator"]
    # "What to say" gives the phrases, built from the person's facts, and the same menu again.
    script = play(engine, turn, 2)
    phrases = [localizer.text(b.text, "en") for b in script.blocks if isinstance(b, Phrase)]
    opening = "Hello, my credit card repayment is 45 days overdue, and I owe about CN¥20,000.00. I want to repay it."
    assert phrases[0] == opening
    assert script.question is not None and script.question.state == "menu_summary"
    assert "plan" not in script.milestones  # the plan is counted once, when it is shown
    # "Next step" goes on to step 1, not back to the start.
    step = play(engine, turn, 1)
    assert "Step 1 of 4" in render_turn(step, localizer)
    assert step.session.flow == "cardholder" and not step.finished


def _random_walk(engine: Engine, rng: random.Random) -> set[tuple[str, str]]:
    typed = [
        "3",
        "45",
        "120",
        "两个月",
        "8000",
        "60000",
        "1.5万",
        "skip",
        "forgot the due date",
        "lost my job",
        "yes",
        "no",
        "shopping spree",
        "several loans",
    ]
    turn = start(engine, rng.choice(["zh_CN", "en"]))
    seen = set(turn.passed)
    if rng.random() < 0.2:  # what only a command enters: /remind, or a check-in that comes
        turn = engine.handle(turn.session, Command(rng.choice([CommandName.REMIND, CommandName.CHECKIN])))
        seen |= set(turn.passed)
    for _ in range(40):
        if turn.finished:
            break
        if turn.question and turn.question.options and rng.random() < 0.6:
            event: Event = Chose(turn.session.version, rng.randrange(len(turn.question.options)))
        else:
            event = Said(rng.choice(typed))
        turn = engine.handle(turn.session, event)
        seen |= set(turn.passed)
    return seen


def test_every_state_of_every_flow_is_reached(engine: Engine) -> None:
    rng = random.Random(20261128)
    seen: set[tuple[str, str]] = set()
    for _ in range(400):
        seen |= _random_walk(engine, rng)
    every = {(f.name, name) for f in engine.spec.flows.values() for name in f.states}
    assert every <= seen, every - seen


def test_skip_words_come_from_settings(dialogs_copy: Path) -> None:
    settings = dialogs_copy / "settings.yaml"
    text = settings.read_text(encoding="utf-8")
    assert "skip_words: [" in text
    settings.write_text(text.replace("skip_words: [", "skip_words: [no idea, ", 1), encoding="utf-8")
    edited = Engine(load_dialogs(dialogs_copy))
    at_amount = play(edited, start(edited), 1, 1, "45")
    assert at_amount.question is not None and at_amount.question.state == "amount"
    skipped = edited.handle(at_amount.session, Said("No idea"))
    assert skipped.session.state == "story" and "amount" not in skipped.session.slots
    # a word that is not in the list is read as an answer, and is not one
    assert edited.handle(at_amount.session, Said("whatever")).session.state == "amount"


def test_restart_is_a_fresh_conversation_with_or_without_notice(engine: Engine, localizer: Localizer) -> None:
    turn = engine.restart("zh_CN", version=8)
    assert (turn.session.flow, turn.session.state, turn.session.version) == ("start", "role", 8)
    assert turn.session.locale == "zh_CN" and turn.session.slots == {} and turn.session.history == ()
    first = turn.blocks[0]
    assert isinstance(first, Say) and first.tone is Tone.WARNING
    assert first.text.msgid == engine.spec.messages["session_updated"]
    quiet = engine.restart("en", notice=False)
    assert all(not (isinstance(b, Say) and b.tone is Tone.WARNING) for b in quiet.blocks)
    assert "I am Overdue Advisor" in render_turn(quiet, localizer)
    assert engine.restart("xx").session.locale == engine.locales[0]  # an unknown language falls back


def test_an_end_state_finishes_through_the_machine(engine: Engine, localizer: Localizer) -> None:
    # The staff flow still ends (the cardholder plan ends in a menu instead).
    turn = play(engine, start(engine), 2, 1, "45", "20000")
    assert turn.finished and turn.question is None
    assert turn.session.flow == "staff" and "plan" in turn.milestones
    assert engine.machine.get_state(f"{turn.session.flow}.{turn.session.state}").final
    assert "Those are the five steps." in render_turn(turn, localizer)
    # anything typed after the end starts over at the role question
    again = engine.handle(turn.session, Said("hello"))
    assert (again.session.flow, again.session.state) == ("start", "role")
    assert "Who are you?" in render_turn(again, localizer)
