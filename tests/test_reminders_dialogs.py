"""The reminder questions, the offers after the plan and the check-in's three answers,
through the real dialogs and the pure engine; the advisor's planning of what they ask for."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from bot.channels.terminal import render_turn
from bot.engine.engine import Engine
from bot.engine.events import Chose, Command, CommandName, Event, Said, Start
from bot.engine.session import Session
from bot.engine.turn import Phrase, Turn
from bot.i18n.catalog import Localizer
from bot.reminders.planning import Planner
from bot.reminders.rows import Kind, MonthlyRow
from bot.reminders.schedule import Moment
from bot.spec.actions import ActionName
from bot.store.base import CloseReminders, PlanReminder

NOW = datetime(2025, 2, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def press(engine: Engine, turn: Turn, localizer: Localizer, label: str) -> Turn:
    """Press the button labelled `label` (in the session's language)."""
    assert turn.question is not None, render_turn(turn, localizer)
    labels = [localizer.text(o.label, turn.session.locale) for o in turn.question.options]
    assert label in labels, labels
    return engine.handle(turn.session, Chose(turn.session.version, labels.index(label)))


def play(engine: Engine, turn: Turn, *typed: str) -> Turn:
    for text in typed:
        turn = engine.handle(turn.session, Said(text))
    return turn


def plan_walk(engine: Engine, locale: str = "en", knew_due_date: str = "no") -> Turn:
    """A cardholder through the whole standard plan, to the first offer after it."""
    turn = engine.handle(engine.new_session(locale), Start(locale))
    turn = play(engine, turn, "1", "credit card", "45", "15000", "skip", "no", knew_due_date, "no", "none", "no")
    event: Event
    for _ in range(12):
        if turn.session.state in ("offer_checkin", "offer_reminder", "after_plan"):
            return turn
        event = Chose(turn.session.version, 0)  # "Next step" on every menu
        turn = engine.handle(turn.session, event)
    raise AssertionError(f"the plan did not end: {turn.session.state}")


def test_remind_asks_and_sets_a_reminder_in_chinese(engine: Engine, localizer: Localizer) -> None:
    turn = engine.handle(engine.new_session("zh_CN"), Command(CommandName.REMIND))
    text = render_turn(turn, localizer)
    assert "提醒按您当地的时间发送。您的时区：中国（Asia/Shanghai）。对吗？" in text
    turn = play(engine, turn, "对", "15号", "提前3天", "9点", "不用")
    assert turn.session.flow == "reminders" and turn.finished
    assert turn.session.slots["remind_day"] == 15
    [action] = turn.actions
    assert action.name is ActionName.SET_REMINDER
    assert dict(action.values) == {"day": 15, "days_before": 3, "time": "09:00", "on_due_day": False}
    planned, changes = Planner(engine).plan(turn, NOW)
    [change] = changes
    assert isinstance(change, PlanReminder) and change.kind == Kind.MONTHLY
    # 15 March minus three days, 09:00 in Shanghai; today (20 Feb) is past 12 Feb's.
    assert change.due_at == datetime(2025, 3, 12, 1, 0, tzinfo=UTC)
    reminder = MonthlyRow.from_payload(change.payload, change.due_at)
    assert (reminder.next.due, reminder.next.moment, reminder.locale) == (date(2025, 3, 15), Moment.BEFORE, "zh_CN")
    text = render_turn(planned, localizer)
    assert "设置好了：每月15号还款，我会提前3天提醒您，时间是您所在时区（中国（Asia/Shanghai））的09:00。" in text
    # The confirmation follows the text that asked for it, and says when the first comes.
    assert text.index("设置好了") < text.index("第一次提醒时间：2025年3月12日周三 09:00（Asia/Shanghai）。")
    assert text.index("第一次提醒时间") < text.index("每条提醒下面都有一个")


def test_remind_in_another_time_zone_on_the_31st(engine: Engine, localizer: Localizer) -> None:
    turn = engine.handle(engine.new_session("en"), Command(CommandName.REMIND))
    turn = press(engine, turn, localizer, "Change it")
    turn = play(engine, turn, "new york", "the 31st")
    turn = press(engine, turn, localizer, "1 day before")
    turn = press(engine, turn, localizer, "20:00")
    turn = press(engine, turn, localizer, "Yes, on the day too")
    planned, [change] = Planner(engine).plan(turn, NOW)
    assert isinstance(change, PlanReminder)
    # Due 28 February (no 31st), reminded on the 27th at 20:00 New York time (EST).
    assert change.due_at == datetime(2025, 2, 28, 1, 0, tzinfo=UTC)
    assert change.payload["zone"] == "America/New_York" and change.payload["on_due_day"] is True
    text = render_turn(planned, localizer)
    assert "at 20:00 in your time zone, New York (America/New_York)." in text
    assert "The first reminder comes on Thu, Feb 27, 2025, 20:00 (America/New_York)." in text


def test_the_day_is_read_and_a_bad_one_asked_again(engine: Engine, localizer: Localizer) -> None:
    turn = engine.handle(engine.new_session("en"), Command(CommandName.REMIND))
    turn = play(engine, turn, "yes")
    assert turn.question is not None and turn.question.numbered is False  # "3" is the 3rd, not option 3
    for typed, day in (("3", 3), ("十五号", 15), ("the 1st", 1), ("月底", 31)):
        assert play(engine, turn, typed).session.slots["remind_day"] == day
    again = play(engine, turn, "32")
    assert again.session.state == "day" and not again.changed
    assert "Please give the day of the month your repayment is due, from 1 to 31" in render_turn(again, localizer)


def test_remind_mid_conversation_goes_back_to_the_advice(engine: Engine) -> None:
    turn = engine.handle(engine.new_session("en"), Start("en"))
    turn = play(engine, turn, "1", "credit card", "45")
    assert turn.session.state == "amount"
    turn = engine.handle(turn.session, Command(CommandName.REMIND))
    turn = play(engine, turn, "yes", "15", "3 days before", "09:00", "no")
    # The conversation goes on at the first question still unanswered.
    assert (turn.session.flow, turn.session.state) == ("cardholder", "amount")
    assert [a.name for a in turn.actions] == [ActionName.SET_REMINDER]


def test_the_plan_offers_a_checkin_then_a_reminder(engine: Engine, localizer: Localizer) -> None:
    turn = plan_walk(engine)
    assert turn.session.state == "offer_checkin"
    assert "Shall I check in with you in 3 days to ask how it went?" in render_turn(turn, localizer)
    turn = press(engine, turn, localizer, "Yes, please")
    [action] = turn.actions
    assert action.name is ActionName.SCHEDULE_CHECKIN
    planned, [change] = Planner(engine).plan(turn, NOW)
    assert isinstance(change, PlanReminder) and change.kind == Kind.CHECKIN and change.replaces
    assert change.due_at == datetime(2025, 2, 23, 1, 0, tzinfo=UTC)  # in 3 days, 09:00 in Shanghai
    text = render_turn(planned, localizer)
    assert "Good: I will ask you in 3 days how it went." in text
    assert "I will check in on Sun, Feb 23, 2025, 09:00 (Asia/Shanghai)." in text
    # "No" to the due date: a missed reminder is probable, so a reminder is offered too.
    assert turn.session.state == "offer_reminder"
    turn = press(engine, turn, localizer, "Yes, remind me")
    assert turn.session.flow == "reminders"
    turn = play(engine, turn, "yes", "15", "3 days before", "09:00", "no")
    assert (turn.session.flow, turn.session.state) == ("cardholder", "after_plan")
    # A review of the plan offers nothing again.
    review = press(engine, turn, localizer, "The plan from the start")
    for _ in range(10):
        review = engine.handle(review.session, Chose(review.session.version, 0))
        if review.session.state == "after_plan":
            break
    assert review.session.state == "after_plan"
    assert not review.actions


def test_no_reminder_offer_when_the_due_date_was_known(engine: Engine, localizer: Localizer) -> None:
    turn = plan_walk(engine, knew_due_date="yes")
    turn = press(engine, turn, localizer, "No, thanks")
    assert turn.session.state == "after_plan" and not turn.actions


def checked_in(engine: Engine, localizer: Localizer, locale: str = "en", **slots: object) -> Turn:
    """A conversation after the plan, moved to the check-in question as the loop does."""
    turn = plan_walk(engine, locale)
    turn = press(engine, turn, localizer, "No, thanks" if locale == "en" else "不用了，谢谢")
    turn = engine.handle(turn.session, Said("no"))  # no reminder either
    session = turn.session
    if slots:
        session = session.evolve(slots={**session.slots, **slots})
    return engine.handle(session, Command(CommandName.CHECKIN))


def test_the_checkin_asks_did_you_reach_your_bank(engine: Engine, localizer: Localizer) -> None:
    turn = checked_in(engine, localizer)
    text = render_turn(turn, localizer)
    assert "Did you reach your bank?" in text
    assert turn.question is not None
    assert [localizer.text(o.label, "en") for o in turn.question.options] == [
        "We agreed a plan",
        "They refused",
        "Not yet",
    ]
    # A Huabei user is asked about Alipay's customer service, not a bank.
    huabei = engine.handle(
        Session("cardholder", "after_plan", "zh_CN", {"product": "huabei"}), Command(CommandName.CHECKIN)
    )
    assert "您联系上支付宝客服了吗？" in render_turn(huabei, localizer)
    assert "银行" not in render_turn(huabei, localizer)


def test_agreed_becomes_a_reminder_with_the_amount(engine: Engine, localizer: Localizer) -> None:
    turn = press(engine, checked_in(engine, localizer), localizer, "We agreed a plan")
    [answered] = turn.actions
    assert answered.name is ActionName.ANSWER_CHECKIN and answered.values == {"outcome": "agreed"}
    _, [closed] = Planner(engine).plan(turn, NOW)
    assert closed == CloseReminders(Kind.ASKED, "followup.agreed")
    turn = play(engine, turn, "1200", "25号")
    assert turn.session.state == "after_plan"
    planned, [change] = Planner(engine).plan(turn, NOW)
    assert isinstance(change, PlanReminder)
    reminder = MonthlyRow.from_payload(change.payload, change.due_at)
    assert reminder.amount == Decimal(1200) and reminder.schedule.day == 25 and reminder.schedule.days_before == 3
    assert change.due_at == datetime(2025, 2, 22, 1, 0, tzinfo=UTC)  # 25 Feb minus 3 days, 09:00
    text = render_turn(planned, localizer)
    assert "Done: every month, before day 25, I will remind you to repay CN¥1,200.00." in text


def test_refused_gives_the_written_route_12378_and_a_letter_with_the_facts(
    engine: Engine, localizer: Localizer
) -> None:
    turn = press(engine, checked_in(engine, localizer, "zh_CN"), localizer, "被拒绝了")
    text = render_turn(turn, localizer)
    assert "书面提出申请" in text and "12378" in text
    # What they can pay is not known yet (no calculator): asked for the letter.
    assert turn.session.state == "followup_can_pay"
    turn = play(engine, turn, "800")
    letter = [b for b in turn.blocks if isinstance(b, Phrase)]
    [card] = [localizer.text(p.text, "zh_CN") for p in letter]
    assert "我的还款已逾期45天，目前欠款约¥15,000.00" in card
    assert "我每月可以稳定还款¥800.00" in card
    assert turn.session.state == "after_plan"
    _, [closed] = Planner(engine).plan(press(engine, checked_in(engine, localizer), localizer, "They refused"), NOW)
    assert closed == CloseReminders(Kind.ASKED, "followup.refused")


def test_refused_asks_only_the_facts_not_known(engine: Engine, localizer: Localizer) -> None:
    turn = checked_in(engine, localizer, monthly_payment=1500)
    turn = press(engine, turn, localizer, "They refused")
    assert turn.session.state == "after_plan"  # amount, days and the monthly payment are known
    [card] = [localizer.text(b.text, "en") for b in turn.blocks if isinstance(b, Phrase)]
    assert (
        "is 45 days overdue, and I owe about CN¥15,000.00" in card
        and "I can steadily repay CN¥1,500.00 a month" in card
    )


def test_not_yet_shows_the_script_again_and_one_more_checkin(engine: Engine, localizer: Localizer) -> None:
    turn = press(engine, checked_in(engine, localizer), localizer, "Not yet")
    text = render_turn(turn, localizer)
    assert "Here are the words again" in text
    assert "Hello, my credit card repayment is 45 days overdue" in text  # the call script
    assert turn.session.state == "followup_again"
    assert "Shall I check in with you once more, in 3 days?" in text
    turn = press(engine, turn, localizer, "Yes, please")
    assert turn.session.state == "after_plan"
    _, changes = Planner(engine).plan(turn, NOW)
    assert [type(c) for c in changes] == [PlanReminder] and changes[0].kind == Kind.CHECKIN  # type: ignore[union-attr]
    # The second check-in, "not yet" again: the script, and no third check-in.
    again = engine.handle(turn.session, Command(CommandName.CHECKIN))
    again = press(engine, again, localizer, "Not yet")
    assert again.session.state == "after_plan"
    assert "Hello, my credit card repayment is 45 days overdue" in render_turn(again, localizer)
    assert [a.name for a in again.actions] == [ActionName.ANSWER_CHECKIN]


def test_a_typed_answer_works_like_the_button(engine: Engine, localizer: Localizer) -> None:
    turn = play(engine, checked_in(engine, localizer, "zh_CN"), "谈好了")
    assert turn.session.state == "followup_amount"
    assert turn.session.slots["followup"] == "agreed"


def test_back_from_the_checkin_returns_to_where_the_person_was(engine: Engine) -> None:
    session = Session("cardholder", "after_plan", "en", {"product": "credit_card", "days_overdue": 45})
    turn = engine.handle(session, Command(CommandName.CHECKIN))
    assert turn.session.state == "followup"
    back = engine.handle(turn.session, Command(CommandName.BACK))
    assert back.session.state == "after_plan"
