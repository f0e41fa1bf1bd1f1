"""What the bot does in a Telegram chat, as data: one dataclass per Bot API effect, and
the JSON form the outbox keeps until the effect is carried out.

An update's effects are decided inside its conversation block (`Advisor.handle`),
committed with the new session, and carried out afterwards by `delivery.Delivery`
through `sender.TelegramSender.perform`. So nothing here may need Telegram objects or
the network: a button press is kept as its query id and message id, a chart as its
numbers (drawn when it is sent).

Some effects are cosmetic ("typing…", answering a press, marking a question answered,
taking stale buttons away): when one fails it is dropped and the chat goes on. The
others are what the user reads; they are sent in order, exactly once but for the window
`delivery` names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.channels.telegram.render import TYPING_THRESHOLD, ChartPhoto, turn_html
from bot.engine.turn import Turn
from bot.i18n.catalog import Localizer
from bot.stats.report import ReportChart

CHAT_KEY_PREFIX = "tg"

Buttons = tuple[tuple[str, str], ...]  # (label, callback data), in order


def chat_key(chat_id: int) -> str:
    """The store's key for a Telegram chat."""
    return f"{CHAT_KEY_PREFIX}:{chat_id}"


def chat_id_of(key: str) -> int:
    """The Telegram chat id of a store key made by `chat_key`; ValueError for any other."""
    prefix, _, number = key.partition(":")
    if prefix != CHAT_KEY_PREFIX:
        raise ValueError("not a Telegram chat key")
    return int(number)


def buttons_of(pairs: Sequence[Sequence[str]]) -> Buttons:
    """(label, data) pairs as the effects keep them (JSON gives lists back)."""
    return tuple((str(label), str(data)) for label, data in pairs)


@dataclass(frozen=True)
class SendText:
    """A new HTML message, with `buttons` as its inline keyboard."""

    html: str
    buttons: Buttons = ()


@dataclass(frozen=True)
class SendChart:
    """The calculator's chart as a photo (drawn at send time), with a keyboard."""

    chart: ChartPhoto
    buttons: Buttons = ()


@dataclass(frozen=True)
class SendReport:
    """The funnel statistics for an operator (`/stats`): the chart as a photo (drawn at
    send time) with the summary as its caption (HTML, at most 1,024 characters)."""

    chart: ReportChart
    caption: str


@dataclass(frozen=True)
class ReplaceText:
    """`html` in place of message `message_id` (a confirmation answered), or as a new
    message when there is none or it can no longer be edited."""

    message_id: int | None
    html: str


@dataclass(frozen=True)
class ShowTyping:
    """ "typing…" before a long reply (cosmetic)."""


@dataclass(frozen=True)
class AnswerPress:
    """Answer a button press, stopping its spinner, with an optional toast (cosmetic)."""

    query_id: str
    text: str | None = None


@dataclass(frozen=True)
class EditText:
    """Replace a message's text and remove its keyboard: a question marked answered (cosmetic)."""

    message_id: int
    html: str


@dataclass(frozen=True)
class RemoveButtons:
    """Take a message's keyboard away: stale buttons (cosmetic)."""

    message_id: int


Effect = SendText | SendChart | SendReport | ReplaceText | ShowTyping | AnswerPress | EditText | RemoveButtons


def is_cosmetic(effect: Effect) -> bool:
    """True for effects whose failure must neither block nor fail the chat."""
    return isinstance(effect, (ShowTyping, AnswerPress, EditText, RemoveButtons))


# --- the outbox's JSON ---------------------------------------------------------------


def encode(effect: Effect) -> dict[str, Any]:
    """The JSON object the outbox keeps for `effect` (`decode` reads it back)."""
    if isinstance(effect, SendText):
        return {"kind": "text", "html": effect.html, "buttons": [list(b) for b in effect.buttons]}
    if isinstance(effect, SendChart):
        chart = effect.chart
        return {
            "kind": "chart",
            "title": chart.title,
            "x_axis": chart.x_axis,
            "y_axis": chart.y_axis,
            "lines": [[label, list(values), dashed] for label, values, dashed in chart.lines],
            "locale": chart.locale,
            "buttons": [list(b) for b in effect.buttons],
        }
    if isinstance(effect, SendReport):
        return {"kind": "report", "chart": effect.chart.as_json(), "caption": effect.caption}
    if isinstance(effect, ReplaceText):
        return {"kind": "replace", "message_id": effect.message_id, "html": effect.html}
    if isinstance(effect, ShowTyping):
        return {"kind": "typing"}
    if isinstance(effect, AnswerPress):
        return {"kind": "answer", "query_id": effect.query_id, "text": effect.text}
    if isinstance(effect, EditText):
        return {"kind": "edit", "message_id": effect.message_id, "html": effect.html}
    return {"kind": "unbutton", "message_id": effect.message_id}


def decode(payload: dict[str, Any]) -> Effect:
    """The effect an outbox payload holds; ValueError for a payload this code cannot
    read (written by a newer version, or damaged)."""
    try:
        kind = payload["kind"]
        if kind == "text":
            return SendText(str(payload["html"]), buttons_of(payload.get("buttons", ())))
        if kind == "chart":
            lines = tuple(
                (str(label), tuple(float(v) for v in values), bool(dashed))
                for label, values, dashed in payload["lines"]
            )
            chart = ChartPhoto(
                str(payload["title"]), str(payload["x_axis"]), str(payload["y_axis"]), lines, str(payload["locale"])
            )
            return SendChart(chart, buttons_of(payload.get("buttons", ())))
        if kind == "report":
            return SendReport(ReportChart.from_json(payload["chart"]), str(payload["caption"]))
        if kind == "replace":
            message_id = payload.get("message_id")
            return ReplaceText(None if message_id is None else int(message_id), str(payload["html"]))
        if kind == "typing":
            return ShowTyping()
        if kind == "answer":
            text = payload.get("text")
            return AnswerPress(str(payload["query_id"]), None if text is None else str(text))
        if kind == "edit":
            return EditText(int(payload["message_id"]), str(payload["html"]))
        if kind == "unbutton":
            return RemoveButtons(int(payload["message_id"]))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"unreadable outbox payload ({type(error).__name__})") from None
    raise ValueError("unknown outbox payload kind")


def turn_effects(turn: Turn, localizer: Localizer) -> list[Effect]:
    """A turn as effects: "typing…" first when the reply is long, then its messages in
    order (a chart as a photo where it stands), the question's buttons on the last."""
    messages, buttons = turn_html(turn, localizer)
    effects: list[Effect] = []
    if len(messages) > 1 or sum(len(m) for m in messages if isinstance(m, str)) > TYPING_THRESHOLD:
        effects.append(ShowTyping())
    for number, item in enumerate(messages, start=1):
        keys = buttons_of(buttons) if number == len(messages) else ()
        effects.append(SendChart(item, keys) if isinstance(item, ChartPhoto) else SendText(item, keys))
    return effects
