"""The stand-in refuses what Telegram refuses, in Telegram's words, to PTB's own client."""

from __future__ import annotations

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, RetryAfter

from tests.support.tg_harness import TOKEN
from tests.support.tg_standin import StandIn, parse_html

CHAT = 424242


def bot_for(standin: StandIn, token: str = TOKEN) -> Bot:
    return Bot(token, base_url=f"{standin.url}/bot")


async def test_get_me_and_send(standin: StandIn) -> None:
    async with bot_for(standin) as bot:
        assert bot.username == "overdue_advisor_test_bot"
        html = "<b>Hi</b> &amp; <code>copy me</code>"
        sent = await bot.send_message(CHAT, html, parse_mode=ParseMode.HTML)
    assert sent.text == "Hi & copy me"
    assert sent.text_html == "<b>Hi</b> &amp; <code>copy me</code>"
    assert standin.messages(CHAT)[-1].text == "Hi & copy me"


async def test_wrong_token_is_unauthorized(standin: StandIn) -> None:
    with pytest.raises(InvalidToken):
        async with bot_for(standin, "1:wrongwrongwrongwrongwrongwrong"):
            pass


@pytest.mark.parametrize(
    "html",
    ["a < b", "fish & chips", "<b>open", "<div>x</div>", "<b><i>x</b></i>", "<span>x</span>"],
)
async def test_invalid_html_is_refused(standin: StandIn, html: str) -> None:
    async with bot_for(standin) as bot:
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(CHAT, html, parse_mode=ParseMode.HTML)


async def test_too_long_is_refused_after_entity_parsing(standin: StandIn) -> None:
    async with bot_for(standin) as bot:
        # 4096 visible characters are fine even though the HTML is longer...
        await bot.send_message(CHAT, "<b>" + "x" * 4096 + "</b>", parse_mode=ParseMode.HTML)
        # ...4097 are not.
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await bot.send_message(CHAT, "x" * 4097)


async def test_callback_data_over_64_bytes_is_refused(standin: StandIn) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    async with bot_for(standin) as bot:
        with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
            await bot.send_message(CHAT, "pick", reply_markup=markup)


async def test_unchanged_edit_is_refused(standin: StandIn) -> None:
    async with bot_for(standin) as bot:
        sent = await bot.send_message(CHAT, "same")
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_text("same", chat_id=CHAT, message_id=sent.message_id)
        await bot.edit_message_text("changed", chat_id=CHAT, message_id=sent.message_id)
    assert standin.messages(CHAT)[-1].text == "changed"


async def test_callback_query_answered_once(standin: StandIn) -> None:
    async with bot_for(standin) as bot:
        await bot.answer_callback_query("777", text="ok")
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await bot.answer_callback_query("777")


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_429_then_ok(standin: StandIn) -> None:
    standin.fail_next(1, retry_after=3, methods={"sendMessage"})
    async with bot_for(standin) as bot:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(CHAT, "first")
        assert caught.value._retry_after.total_seconds() == 3
        await bot.send_message(CHAT, "second")


def test_parse_html_entities_use_utf16_offsets() -> None:
    text, entities = parse_html("😀 <b>粗体</b>")
    assert text == "😀 粗体"
    assert entities == [{"type": "bold", "offset": 3, "length": 2}]
