"""The operators' funnel: stored anonymous events aggregated, as text, JSON or chart data.

A conversation is the run of one chat's events from a `conversation_started` to the
next (the chat is only a keyed hash). With `since`, only conversations that started
since then are followed; events of a conversation that started earlier are left out
rather than counted without their beginning. Each number is a count of conversations:
a question reached three times (a menu, a re-ask) counts once.

- reached: the question was shown; answered: it was left by an answer (or Skip);
  stopped there: it is the last question the conversation was shown and the
  conversation did not reach an end (gave up, or is still there).
- top causes: the top cause at the (last) plan shown, beside each cause's prior, the
  share in the source document (causes.yaml `prior:`).
- products and bands: the last answer of the conversation (after /back, the new one).
- follow-ups: every `followup.<outcome>` event since `since`, by outcome.
"""

from __future__ import annotations

import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.engine.commands import N_
from bot.engine.turn import Msg, Percent
from bot.i18n.catalog import Localizer
from bot.spec.model import DialogSpec
from bot.stats.funnel import (
    AMOUNT,
    AMOUNT_BANDS,
    ANSWERED,
    ASKED,
    DAY_BANDS,
    FINISHED,
    FOLLOWUP,
    OVERDUE,
    PLAN_SHOWN,
    PRODUCT,
    STARTED,
    Band,
)

# The follow-up outcomes the reminders record (`followup.<outcome>`), in display order;
# an outcome not listed here is shown by its id, after these.
FOLLOWUP_LABELS = {
    "agreed": N_("agreed"),
    "refused": N_("refused"),
    "no_answer": N_("no answer"),
}


class StoredEvent(Protocol):
    """What the report reads of a stored event (the store's `EventRecord`)."""

    @property
    def name(self) -> str: ...

    @property
    def chat_hash(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...


@dataclass(frozen=True)
class QuestionRow:
    """One question of the funnel, `flow.state`, in conversations."""

    state: str
    reached: int
    answered: int
    stopped: int


@dataclass(frozen=True)
class CauseRow:
    """A cause: conversations whose plan put it first, their share, the source's share."""

    id: str
    label: str  # a msgid (the cause's label in causes.yaml), or the id of an unknown cause
    conversations: int
    share: float
    source_share: float | None  # None: a cause no longer in causes.yaml


@dataclass(frozen=True)
class CountRow:
    """A product, band or outcome and its count; `label` is a msgid or language-neutral."""

    key: str
    label: str
    count: int


@dataclass(frozen=True)
class FunnelReport:
    """Everything `python -m bot stats` and `/stats` show."""

    since: datetime | None
    started: int
    plan_shown: int
    finished: int
    median_seconds_to_plan: float | None
    questions: tuple[QuestionRow, ...]
    causes: tuple[CauseRow, ...]
    products: tuple[CountRow, ...]
    overdue: tuple[CountRow, ...]
    amounts: tuple[CountRow, ...]
    followups: tuple[CountRow, ...]
    # Conversations stored now (all time; None when not asked for).
    active: int | None = None

    def as_json(self) -> dict[str, Any]:
        """Ids and numbers only (no translated labels), for scripts."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "conversations": {"started": self.started, "plan_shown": self.plan_shown, "finished": self.finished},
            "active_conversations": self.active,
            "median_seconds_to_plan": self.median_seconds_to_plan,
            "questions": [
                {"state": q.state, "reached": q.reached, "answered": q.answered, "stopped": q.stopped}
                for q in self.questions
            ],
            "causes": [
                {
                    "id": c.id,
                    "conversations": c.conversations,
                    "share": round(c.share, 4),
                    "source_share": c.source_share,
                }
                for c in self.causes
            ],
            "products": {row.key: row.count for row in self.products},
            "overdue_days": {row.key: row.count for row in self.overdue},
            "amounts": {row.key: row.count for row in self.amounts},
            "followups": {row.key: row.count for row in self.followups},
        }


# ------------------------------------------------------------------ aggregation


@dataclass
class _Conversation:
    started_at: datetime
    asked: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)
    last_asked: str | None = None
    plan_at: datetime | None = None
    cause: str | None = None
    finished: bool = False
    product: str | None = None
    overdue: str | None = None
    amount: str | None = None

    def add(self, kind: str, rest: str, at: datetime) -> None:
        if kind == ASKED:
            self.asked.add(rest)
            self.last_asked = rest
        elif kind == ANSWERED:
            self.answered.add(rest)
        elif kind == PLAN_SHOWN:
            self.plan_at = self.plan_at or at
            self.cause = rest.partition(".")[2]  # plan_shown.<flow>.<cause>
        elif kind == FINISHED:
            self.finished = True
        elif kind == PRODUCT:
            self.product = rest
        elif kind == OVERDUE:
            self.overdue = rest
        elif kind == AMOUNT:
            self.amount = rest


def build_report(
    events: Iterable[StoredEvent],
    spec: DialogSpec,
    *,
    since: datetime | None = None,
    active: int | None = None,
) -> FunnelReport:
    """Aggregate `events` (in the order they were recorded, as the store returns them)."""
    conversations: list[_Conversation] = []
    current: dict[str, _Conversation] = {}
    followups: Counter[str] = Counter()
    for event in events:
        kind, _, rest = event.name.partition(".")
        if kind == FOLLOWUP:
            followups[rest] += 1
        elif event.name == STARTED:
            current[event.chat_hash] = _Conversation(event.created_at)
            conversations.append(current[event.chat_hash])
        elif event.chat_hash in current:
            current[event.chat_hash].add(kind, rest, event.created_at)
    with_plan = [c for c in conversations if c.plan_at is not None]
    seconds = [(c.plan_at - c.started_at).total_seconds() for c in with_plan if c.plan_at is not None]
    return FunnelReport(
        since=since,
        started=len(conversations),
        plan_shown=len(with_plan),
        finished=sum(c.finished for c in conversations),
        median_seconds_to_plan=statistics.median(seconds) if seconds else None,
        questions=_questions(conversations, spec),
        causes=_causes(with_plan, spec),
        products=_products(conversations, spec),
        overdue=_banded([c.overdue for c in conversations], DAY_BANDS),
        amounts=_banded([c.amount for c in conversations], AMOUNT_BANDS),
        followups=_followups(followups),
        active=active,
    )


def _question_order(spec: DialogSpec) -> list[str]:
    """Every question, the entry flow's first, then the flows and states as written."""
    flows = sorted(spec.flows.values(), key=lambda flow: flow.name != spec.entry_flow)
    return [f"{flow.name}.{state.name}" for flow in flows for state in flow.states.values() if state.is_question]


def _questions(conversations: Sequence[_Conversation], spec: DialogSpec) -> tuple[QuestionRow, ...]:
    reached = Counter(state for c in conversations for state in c.asked)
    answered = Counter(state for c in conversations for state in c.answered)
    stopped = Counter(c.last_asked for c in conversations if c.last_asked is not None and not c.finished)
    known = _question_order(spec)
    # A question no longer in the dialogs (renamed, removed) still shows, after the others.
    gone = sorted((set(reached) | set(answered)) - set(known))
    return tuple(
        QuestionRow(state, reached[state], answered[state], stopped[state])
        for state in (*known, *gone)
        if reached[state] or answered[state]
    )


def _causes(with_plan: Sequence[_Conversation], spec: DialogSpec) -> tuple[CauseRow, ...]:
    counts = Counter(c.cause for c in with_plan if c.cause)
    total = sum(counts.values())
    rows = [
        CauseRow(cause.id, cause.label, counts[cause.id], counts[cause.id] / total if total else 0.0, cause.prior)
        for cause in spec.causes
    ]
    known = {cause.id for cause in spec.causes}
    rows += [CauseRow(cid, cid, n, n / total, None) for cid, n in sorted(counts.items()) if cid not in known]
    return tuple(rows)


def _products(conversations: Sequence[_Conversation], spec: DialogSpec) -> tuple[CountRow, ...]:
    counts = Counter(c.product for c in conversations if c.product)
    labels: dict[str, str] = {}
    slot = spec.cost_inputs.product if spec.cost_inputs else None
    for flow in spec.flows.values():
        for state in flow.states.values():
            if slot is not None and state.slot == slot:
                for option in state.options:
                    labels.setdefault(str(option.value), option.label)
    keys = [key for key in labels if counts[key]] + sorted(key for key in counts if key not in labels)
    return tuple(CountRow(key, labels.get(key, key), counts[key]) for key in keys)


def _banded(keys: Sequence[str | None], bands: Sequence[Band]) -> tuple[CountRow, ...]:
    counts = Counter(key for key in keys if key)
    return tuple(CountRow(band.key, band.label, counts[band.key]) for band in bands if counts[band.key])


def _followups(counts: Counter[str]) -> tuple[CountRow, ...]:
    order = [key for key in FOLLOWUP_LABELS if counts[key]] + sorted(k for k in counts if k not in FOLLOWUP_LABELS)
    return tuple(CountRow(key, FOLLOWUP_LABELS.get(key, key), counts[key]) for key in order)


# ------------------------------------------------------------------ text


def render_summary(report: FunnelReport, localizer: Localizer, locale: str) -> str:
    """The headline in a few lines (a photo's caption: Telegram allows 1,024 characters)."""

    def say(msgid: str, **values: str | int | Msg | Percent) -> str:
        return localizer.text(Msg(msgid, values), locale)

    if report.since is not None:
        lines = [say(N_("Conversations since {date}"), date=report.since.date().isoformat())]
    else:
        lines = [say(N_("All conversations"))]
    lines.append(
        say(
            N_("Started {started} · plan shown {plan} ({share}) · finished {finished}"),
            started=report.started,
            plan=report.plan_shown,
            share=Percent(report.plan_shown / report.started if report.started else 0.0),
            finished=report.finished,
        )
    )
    if report.active is not None:
        lines.append(say(N_("Conversations stored now: {active}"), active=report.active))
    if report.median_seconds_to_plan is not None:
        lines.append(say(N_("Median time to the plan: {time}"), time=_duration(report.median_seconds_to_plan)))
    stops = sorted((q for q in report.questions if q.stopped), key=lambda q: -q.stopped)[:3]
    if stops:
        where = ", ".join(f"{q.state} ({q.stopped})" for q in stops)
        lines.append(say(N_("Most often stopped at: {questions}"), questions=where))
    return "\n".join(lines)


def render_text(report: FunnelReport, localizer: Localizer, locale: str) -> str:
    """The whole report as aligned plain text, sections apart by a blank line."""
    return "\n\n".join(render_sections(report, localizer, locale))


# A table longer than this goes on in another section, under its header again, so every
# section fits a Telegram message (4,096 characters) as a monospace block.
MAX_ROWS = 40


def render_sections(report: FunnelReport, localizer: Localizer, locale: str) -> list[str]:
    """The report's sections: the summary, then each table (long ones in parts)."""

    def tr(msgid: str) -> str:
        return localizer.translate(msgid, locale)

    def percent(share: float | None) -> str:
        return "—" if share is None else localizer.value(Percent(share), locale)

    sections = [render_summary(report, localizer, locale)]
    if report.questions:
        sections.extend(
            _table(
                [tr(N_("Question")), tr(N_("reached")), tr(N_("answered")), tr(N_("stopped there"))],
                [[q.state, str(q.reached), str(q.answered), str(q.stopped)] for q in report.questions],
            )
        )
    if report.plan_shown:
        sections.extend(
            _table(
                [tr(N_("Top cause at the plan")), tr(N_("conversations")), tr(N_("share")), tr(N_("source"))],
                [[tr(c.label), str(c.conversations), percent(c.share), percent(c.source_share)] for c in report.causes],
            )
        )
    for title, rows in (
        (N_("Products"), report.products),
        (N_("Days overdue"), report.overdue),
        (N_("Amount (yuan)"), report.amounts),
        (N_("Follow-ups"), report.followups),
    ):
        if rows:
            sections.extend(_table([tr(title), ""], [[tr(row.label), str(row.count)] for row in rows]))
    if not report.started and not report.followups:
        sections.append(tr(N_("No conversations in this period.")))
    return sections


def _duration(seconds: float) -> Msg:
    whole = round(seconds)
    if whole < 60:
        return Msg(N_("{seconds} s"), {"seconds": whole})
    if whole < 3600:
        return Msg(N_("{minutes} min {seconds} s"), {"minutes": whole // 60, "seconds": whole % 60})
    return Msg(N_("{hours} h {minutes} min"), {"hours": whole // 3600, "minutes": whole % 3600 // 60})


def _width(text: str) -> int:
    """Columns on a monospace screen: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The first column left-aligned, numbers right-aligned, by display width; in parts
    of at most `MAX_ROWS` rows, each under the header."""
    widths = [max(_width(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [row[0] + " " * (widths[0] - _width(row[0]))]
        cells += [" " * (widths[i] - _width(cell)) + cell for i, cell in enumerate(row[1:], start=1)]
        return "  ".join(cells).rstrip()

    return [
        "\n".join(line(row) for row in (header, *rows[start : start + MAX_ROWS]))
        for start in range(0, len(rows), MAX_ROWS)
    ]


# ------------------------------------------------------------------ chart data


@dataclass(frozen=True)
class Step:
    """A row of the funnel: conversations that reached it, and that answered (if a question)."""

    label: str
    reached: int
    answered: int | None = None


@dataclass(frozen=True)
class CauseBars:
    """A cause's label, its share of plans and its share in the source document."""

    label: str
    share: float
    source_share: float


@dataclass(frozen=True)
class ReportChart:
    """Everything the chart shows, already translated."""

    title: str
    steps: tuple[Step, ...]
    reached_legend: str
    answered_legend: str
    causes_title: str
    causes: tuple[CauseBars, ...]
    share_legend: str
    source_legend: str

    def as_json(self) -> dict[str, Any]:
        """Numbers and translated labels only, so the chart can wait in an outbox and be
        drawn when it is sent (`from_json` reads it back)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportChart:
        """The chart `as_json` wrote; ValueError for anything else."""
        try:
            steps = tuple(
                Step(str(s["label"]), int(s["reached"]), None if s["answered"] is None else int(s["answered"]))
                for s in data["steps"]
            )
            causes = tuple(
                CauseBars(str(c["label"]), float(c["share"]), float(c["source_share"])) for c in data["causes"]
            )
            texts = {name: str(data[name]) for name in _TEXTS}
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a report chart ({type(error).__name__})") from None
        return cls(steps=steps, causes=causes, **texts)


_TEXTS = ("title", "reached_legend", "answered_legend", "causes_title", "share_legend", "source_legend")


def chart_of(report: FunnelReport, localizer: Localizer, locale: str) -> ReportChart:
    """The chart's content from a report, in `locale`."""

    def tr(msgid: str) -> str:
        return localizer.translate(msgid, locale)

    steps = [
        Step(tr(N_("Started")), report.started),
        *(Step(q.state, q.reached, q.answered) for q in report.questions),
        Step(tr(N_("Plan shown")), report.plan_shown),
        Step(tr(N_("Finished")), report.finished),
    ]
    causes = [CauseBars(tr(c.label), c.share, c.source_share) for c in report.causes if c.source_share is not None]
    return ReportChart(
        title=tr(N_("Conversations: reached and answered")),
        steps=tuple(steps),
        reached_legend=tr(N_("reached")),
        answered_legend=tr(N_("answered")),
        causes_title=tr(N_("Top cause at the plan, against the source document")),
        causes=tuple(causes),
        share_legend=tr(N_("conversations")),
        source_legend=tr(N_("source")),
    )
