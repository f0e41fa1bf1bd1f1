"""A stand-in Telegram Bot API server for tests and benchmarks (aiohttp, loopback only).

It answers `/bot{token}/{method}` like api.telegram.org does, with Telegram's JSON
envelope, and refuses what Telegram refuses: text over 4096 characters after entity
parsing, HTML it cannot parse (unsupported or unclosed tags, a bare `<` or `&`),
callback data over 64 bytes, a wrong token, an edit that changes nothing, a callback
query answered twice. It records every accepted call, keeps every chat's messages as
the user would see them (text, entities, keyboard), and can be told to fail as
Telegram does:

* `fail_next`: 429 with `retry_after` for the next N calls (of some methods);
* `flood_wait`: 429 for ONE chat, for every call to it until its `retry_after` has
  passed (Telegram's per-chat flood control), while other chats are served normally;
* `fail_call`: an HTTP error (500 by default) on the k-th next call of a method, the
  message not sent (Telegram's 500 usually means that) or, with `record=True`, sent;
* `answer_late`: accept and record a message, then answer only N seconds later (for a
  seeded fraction of calls, or the next k), as when Telegram delivered it but the
  answer is lost to a slow network: the bot cannot know the user got it;
* `slow_down`: sendMessage to one chat takes N seconds before it is accepted.

Use it in-process (`StandIn().start()` runs it on a background thread) or as its own
process (`python -m tests.support.tg_standin --token T`, which prints its URL), then
read and steer it over `/_standin/...` control routes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from typing import Any

from aiohttp import web

MAX_TEXT = 4096
# sendPhoto: what Telegram takes as a photo upload, and its caption limit.
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_CAPTION = 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200
BOT_ID = 7000000001
BOT_USERNAME = "overdue_advisor_test_bot"

# tag -> entity type; `span` and `pre` are special-cased below.
TAG_ENTITIES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "blockquote": "blockquote",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
}
TAG_RE = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))?)*)\s*>"
)
ATTR_RE = re.compile(r"([a-zA-Z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+)))?")
ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


class BadRequest(Exception):
    """An answer Telegram gives with ok=false."""

    def __init__(self, description: str, code: int = 400, **parameters: Any) -> None:
        super().__init__(description)
        self.description = description
        self.code = code
        self.parameters = parameters


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode: the visible text and its entities (UTF-16 offsets).

    Raises `BadRequest("Bad Request: can't parse entities: ...")` on what Telegram refuses.
    """
    out: list[str] = []
    offset = 0  # in UTF-16 code units, as Telegram counts entity offsets
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int, dict[str, Any]]] = []
    position = 0
    byte_offset = 0

    def fail(reason: str) -> BadRequest:
        return BadRequest(f"Bad Request: can't parse entities: {reason}")

    while position < len(source):
        char = source[position]
        if char == "<":
            match = TAG_RE.match(source, position)
            if match is None:
                raise fail(f'Unsupported start tag "" at byte offset {byte_offset}')
            closing, name, raw_attrs = match.group(1), match.group(2).lower(), match.group(3)
            if name not in TAG_ENTITIES:
                kind = "end" if closing else "start"
                raise fail(f'Unsupported {kind} tag "{name}" at byte offset {byte_offset}')
            if closing:
                if not stack or stack[-1][0] != name:
                    raise fail(
                        f"Unmatched end tag at byte offset {byte_offset}, expected "
                        f'"</{stack[-1][0] if stack else ""}>", found "</{name}>"'
                    )
                _, start, entity = stack.pop()
                length = offset - start
                if length > 0:
                    entity.update(offset=start, length=length)
                    entities.append(entity)
            else:
                attrs = {
                    m.group(1).lower(): m.group(2) or m.group(3) or m.group(4) or ""
                    for m in ATTR_RE.finditer(raw_attrs)
                }
                entity = {"type": TAG_ENTITIES[name]}
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise fail(f'Unsupported start tag "span" at byte offset {byte_offset}')
                if name == "a":
                    href = unescape(attrs.get("href", ""))
                    if not href:
                        raise fail(f"Can't find URL for the link at byte offset {byte_offset}")
                    entity["url"] = href
                if name == "blockquote" and "expandable" in attrs:
                    entity["type"] = "expandable_blockquote"
                if name == "pre" and attrs.get("language"):
                    entity["language"] = attrs["language"]
                stack.append((name, offset, entity))
            byte_offset += len(match.group(0).encode())
            position = match.end()
            continue
        if char == "&":
            match = ENTITY_RE.match(source, position)
            if match is None:
                raise fail(f"Character entity expected at byte offset {byte_offset}: a bare & must be written &amp;")
            text = unescape(match.group(0))
            out.append(text)
            offset += _utf16_len(text)
            byte_offset += len(match.group(0).encode())
            position = match.end()
            continue
        out.append(char)
        offset += _utf16_len(char)
        byte_offset += len(char.encode())
        position += 1
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


@dataclass
class Call:
    """One accepted Bot API call."""

    method: str
    params: dict[str, Any]
    at: float


@dataclass
class Message:
    """A message as the user sees it in their chat."""

    chat_id: int
    message_id: int
    text: str
    entities: list[dict[str, Any]]
    html: str
    reply_markup: dict[str, Any] | None
    edits: int = 0
    photo: bytes | None = None  # sendPhoto: the image as uploaded (`text` is its caption)

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


@dataclass
class _LateAnswers:
    """`StandIn.answer_late`: which calls are accepted at once but answered late."""

    seconds: float
    methods: frozenset[str]
    chat_id: int | None
    probability: float
    remaining: int | None  # the next `count` matching calls; None: by probability
    rng: random.Random

    def applies(self, method: str, chat_id: Any) -> bool:
        """Whether this call's answer is held (draws from the seeded generator)."""
        if method not in self.methods or (self.chat_id is not None and chat_id != self.chat_id):
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True
        return self.rng.random() < self.probability


@dataclass
class _CallFailure:
    """`StandIn.fail_call`: an HTTP error on the `countdown`-th next matching call."""

    method: str
    countdown: int
    code: int
    record: bool
    chat_id: int | None

    def applies(self, method: str, chat_id: Any) -> bool:
        """Count this call down; True for the one that fails."""
        if self.countdown <= 0 or method != self.method or (self.chat_id is not None and chat_id != self.chat_id):
            return False
        self.countdown -= 1
        return self.countdown == 0


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    refused: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    messages: dict[int, list[Message]] = field(default_factory=dict)
    next_message_id: int = 1
    webhook: dict[str, Any] = field(default_factory=dict)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)
    fail_next: int = 0
    fail_retry_after: int = 1
    fail_methods: frozenset[str] | None = None
    updates: list[dict[str, Any]] = field(default_factory=list)
    call_count: int = 0
    delays: dict[int, float] = field(default_factory=dict)
    late: _LateAnswers | None = None
    late_answered: int = 0  # answers held back so far
    failures: list[_CallFailure] = field(default_factory=list)
    flood_until: dict[int, float] = field(default_factory=dict)  # chat -> monotonic deadline


# Parameters PTB JSON-encodes inside a form body; Telegram decodes them the same way.
_JSON_PARAMS = {
    "reply_markup",
    "allowed_updates",
    "commands",
    "scope",
    "entities",
    "link_preview_options",
    "reply_parameters",
}
_INT_PARAMS = {"chat_id", "message_id", "offset", "limit", "timeout", "max_connections", "cache_time", "user_id"}


class StandIn:
    """The stand-in server. `start()` runs it on a thread; `url` is the API root."""

    def __init__(
        self,
        token: str,
        *,
        record: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.record = record
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._state = _State()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._new_update: asyncio.Condition | None = None
        self._closing = False
        # Set to let every answer held by `answer_late` go at once (at stop, or by a test).
        self._release_held: asyncio.Event | None = None
        self.url = ""

    # --- lifecycle ---------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application (for running it on an existing loop)."""
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/_standin/calls", self._control_calls)
        app.router.add_get("/_standin/count", self._control_count)
        app.router.add_get("/_standin/messages", self._control_messages)
        app.router.add_post("/_standin/fail", self._control_fail)
        app.router.add_post("/_standin/flood", self._control_flood)
        app.router.add_post("/_standin/error", self._control_error)
        app.router.add_post("/_standin/late", self._control_late)
        app.router.add_post("/_standin/slow", self._control_slow)
        app.router.add_post("/_standin/release", self._control_release)
        app.router.add_post("/_standin/clear", self._control_clear)
        app.router.add_get("/_standin/faults", self._control_faults)
        app.router.add_post("/_standin/reset", self._control_reset)
        return app

    async def start_async(self) -> str:
        """Serve on the running loop; returns the API root URL."""
        self._loop = asyncio.get_running_loop()
        self._new_update = asyncio.Condition()
        self._release_held = asyncio.Event()
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, backlog=1024)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self._host}:{port}"
        return self.url

    async def stop_async(self) -> None:
        self._closing = True  # long polls answer at once instead of holding the shutdown
        if self._release_held is not None:
            self._release_held.set()  # and so do late answers
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> StandIn:
        """Run on a background thread with its own loop; returns self once listening."""

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start_async())
            self._started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=run, name="standin-bot-api", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the stand-in Bot API server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # --- what tests read and steer -------------------------------------------------

    def calls(self, method: str | None = None, chat_id: int | None = None) -> list[Call]:
        """Accepted calls, oldest first, optionally of one method and/or one chat."""
        with self._lock:
            return [
                c
                for c in self._state.calls
                if (method is None or c.method == method) and (chat_id is None or c.params.get("chat_id") == chat_id)
            ]

    def refused(self) -> list[tuple[str, dict[str, Any], str]]:
        """(method, params, description) of every call refused (4xx, or a failure it was told to give)."""
        with self._lock:
            return list(self._state.refused)

    def messages(self, chat_id: int) -> list[Message]:
        """The chat as the user sees it now, oldest message first."""
        with self._lock:
            return list(self._state.messages.get(chat_id, []))

    def commands(self) -> dict[str, list[dict[str, Any]]]:
        """setMyCommands by language code ("" is the default list)."""
        with self._lock:
            return dict(self._state.commands)

    @property
    def webhook(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state.webhook)

    @property
    def call_count(self) -> int:
        with self._lock:
            return self._state.call_count

    def fail_next(self, count: int, retry_after: int = 1, methods: set[str] | None = None) -> None:
        """Answer the next `count` calls (of `methods`, if given) with 429 retry_after."""
        with self._lock:
            self._state.fail_next = count
            self._state.fail_retry_after = retry_after
            self._state.fail_methods = frozenset(methods) if methods else None

    def slow_down(self, chat_id: int, seconds: float) -> None:
        """Make sendMessage to `chat_id` take `seconds` (a slow network, a busy Telegram)."""
        with self._lock:
            self._state.delays[chat_id] = seconds

    def flood_wait(self, chat_id: int, retry_after: int) -> None:
        """Telegram's per-chat flood control: every call to `chat_id` gets 429 until
        `retry_after` seconds from now, with the seconds still to wait; other chats are
        served normally. A sender that retries early is refused again (and counted in
        `refused`)."""
        with self._lock:
            self._state.flood_until[chat_id] = time.monotonic() + retry_after

    def fail_call(
        self, method: str, nth: int = 1, *, code: int = 500, record: bool = False, chat_id: int | None = None
    ) -> None:
        """Answer the `nth` next call of `method` (to `chat_id`, if given) with HTTP `code`.

        By default that call is not carried out (Telegram's 500 usually means the
        message was not sent); with `record`, it is, and only the answer is an error.
        Several failures can be armed at once.
        """
        if nth < 1:
            raise ValueError("nth counts from 1 (the next call)")
        with self._lock:
            self._state.failures.append(_CallFailure(method, nth, code, record, chat_id))

    def answer_late(
        self,
        seconds: float,
        *,
        probability: float = 1.0,
        count: int | None = None,
        seed: int = 0,
        methods: set[str] | None = None,
        chat_id: int | None = None,
    ) -> None:
        """Accept and record matching calls at once, but answer them `seconds` later.

        Matching calls are `methods` (default: sendMessage and sendPhoto), to `chat_id` if
        given; either the next `count` of them, or each with `probability`, drawn from a
        generator seeded with `seed` in the order the calls arrive. `seconds=0` stops it.
        `late_answered` counts from zero again.
        """
        with self._lock:
            self._state.late_answered = 0
            self._state.late = (
                _LateAnswers(
                    seconds=seconds,
                    methods=frozenset(methods or {"sendMessage", "sendPhoto"}),
                    chat_id=chat_id,
                    probability=probability,
                    remaining=count,
                    rng=random.Random(seed),
                )
                if seconds > 0
                else None
            )

    @property
    def late_answered(self) -> int:
        """How many answers were held back since the last `answer_late`."""
        with self._lock:
            return self._state.late_answered

    def release_held(self) -> None:
        """Answer every call held by `answer_late` now (and later ones at once, until
        `answer_late` or `clear_faults` is called again)."""
        with self._lock:
            self._state.late = None
        if self._loop is not None and self._release_held is not None:
            self._loop.call_soon_threadsafe(self._release_held.set)

    def clear_faults(self) -> None:
        """No more failures, flood waits, late or slow answers; recorded calls stay."""
        with self._lock:
            state = self._state
            state.fail_next, state.fail_methods = 0, None
            state.delays.clear()
            state.late = None
            state.failures.clear()
            state.flood_until.clear()
        if self._loop is not None and self._release_held is not None:
            self._loop.call_soon_threadsafe(self._release_held.set)

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates (polling)."""
        with self._lock:
            self._state.updates.append(update)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._notify()))

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
        """Poll `predicate` until it holds (for polling-mode tests, where nothing answers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()

    def reset(self) -> None:
        """Forget every call, message and fault (the registered webhook stays)."""
        with self._lock:
            webhook = self._state.webhook
            self._state = _State(webhook=webhook, next_message_id=self._state.next_message_id)
        if self._loop is not None and self._release_held is not None:
            self._loop.call_soon_threadsafe(self._release_held.set)

    async def _notify(self) -> None:
        assert self._new_update is not None
        async with self._new_update:
            self._new_update.notify_all()

    # --- the Bot API ---------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        params = await self._params(request)
        if token != self.token:
            return self._error(method, params, BadRequest("Unauthorized", 401))
        chat_id = params.get("chat_id")
        failure: _CallFailure | None = None
        with self._lock:
            self._state.call_count += 1
            state = self._state
            if state.fail_next > 0 and (state.fail_methods is None or method in state.fail_methods):
                state.fail_next -= 1
                return self._error(method, params, _too_many(state.fail_retry_after))
            flood = state.flood_until.get(chat_id) if isinstance(chat_id, int) else None
            if flood is not None:
                left = flood - time.monotonic()
                if left > 0:
                    return self._error(method, params, _too_many(math.ceil(left)))
                del state.flood_until[chat_id]  # type: ignore[arg-type]
            for armed in state.failures:
                if armed.applies(method, chat_id):
                    failure = armed
                    break
            state.failures = [armed for armed in state.failures if armed.countdown > 0]
        if failure is not None and not failure.record:
            return self._error(method, params, _server_error(failure.code))
        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            return self._error(method, params, BadRequest("Not Found", 404))
        try:
            result = await handler(params)
        except BadRequest as error:
            return self._error(method, params, error)
        except (KeyError, ValueError, TypeError) as error:
            return self._error(method, params, BadRequest(f"Bad Request: invalid parameters: {error}"))
        with self._lock:
            if self.record:
                self._state.calls.append(Call(method, params, time.monotonic()))
            late = self._state.late
            held = late is not None and late.applies(method, chat_id)
            if held:
                self._state.late_answered += 1
        if held:
            assert late is not None
            await self._hold(late.seconds)
        if failure is not None:  # carried out, and yet answered with an error
            return self._error(method, params, _server_error(failure.code))
        return web.json_response({"ok": True, "result": result})

    async def _hold(self, seconds: float) -> None:
        """Wait `seconds`, or less if the held answers are released (or the server stops)."""
        release = self._release_held
        if release is None:  # pragma: no cover - set when serving
            return
        if release.is_set() and not self._closing:
            release.clear()  # a release lets go of what was held then, not what comes later
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), seconds)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        params[key] = value.file.read()  # an upload (sendPhoto)
                    else:
                        params[key] = value if isinstance(value, str) else str(value)
        for key in list(params):
            value = params[key]
            if key in _JSON_PARAMS and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)
            elif key in _INT_PARAMS and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    params[key] = int(value)
            elif isinstance(value, str) and value in ("true", "false"):
                params[key] = value == "true"
        return params

    def _error(self, method: str, params: dict[str, Any], error: BadRequest) -> web.Response:
        with self._lock:
            self._state.refused.append((method, params, error.description))
        body: dict[str, Any] = {
            "ok": False,
            "error_code": error.code,
            "description": error.description,
        }
        if error.parameters:
            body["parameters"] = error.parameters
        return web.json_response(body, status=error.code)

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Overdue Advisor",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id < 0:
            return {"id": chat_id, "type": "group", "title": "A group"}
        return {"id": chat_id, "type": "private", "first_name": "User"}

    async def _api_getme(self, params: dict[str, Any]) -> Any:
        return self._bot_user()

    async def _api_setwebhook(self, params: dict[str, Any]) -> Any:
        url = str(params.get("url", ""))
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise BadRequest("Bad Request: secret token contains unallowed characters")
        if url and not url.startswith(("http://", "https://")):
            raise BadRequest("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        with self._lock:
            self._state.webhook = {
                "url": url,
                "secret_token": secret,
                "allowed_updates": params.get("allowed_updates"),
                "max_connections": params.get("max_connections"),
                "drop_pending_updates": params.get("drop_pending_updates"),
            }
        return True

    async def _api_deletewebhook(self, params: dict[str, Any]) -> Any:
        with self._lock:
            self._state.webhook = {}
        return True

    async def _api_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        with self._lock:
            url = self._state.webhook.get("url", "")
            return {"url": url, "has_custom_certificate": False, "pending_update_count": 0}

    async def _api_setmycommands(self, params: dict[str, Any]) -> Any:
        commands = params["commands"]
        if not isinstance(commands, list) or len(commands) > 100:
            raise BadRequest("Bad Request: commands must be a list of at most 100 commands")
        for command in commands:
            if not COMMAND_RE.fullmatch(str(command.get("command", ""))):
                raise BadRequest("Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise BadRequest("Bad Request: command description is empty or too long")
        language = str(params.get("language_code", "") or "")
        with self._lock:
            self._state.commands[language] = commands
        return True

    async def _api_deletemycommands(self, params: dict[str, Any]) -> Any:
        with self._lock:
            self._state.commands.pop(str(params.get("language_code", "") or ""), None)
        return True

    def _check_markup(self, markup: Any) -> None:
        if markup is None:
            return
        if not isinstance(markup, dict):
            raise BadRequest("Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not str(button.get("text", "")):
                    raise BadRequest("Bad Request: text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                    raise BadRequest("Bad Request: BUTTON_DATA_INVALID")

    def _render(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        source = str(params.get("text", ""))
        mode = str(params.get("parse_mode", "") or "").lower()
        if mode == "html":
            text, entities = parse_html(source)
        elif mode:
            raise BadRequest(f"Bad Request: unsupported parse_mode {mode!r} in the stand-in")
        else:
            text, entities = source, []
        # Telegram trims the text; entities fully in the trimmed part vanish.
        if not text.strip():
            raise BadRequest("Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise BadRequest("Bad Request: message is too long")
        return text, entities

    def message_json(self, message: Message) -> dict[str, Any]:
        """The message as Telegram shows it to bots (e.g. inside a callback_query)."""
        body: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self._bot_user(),
            "chat": self._chat(message.chat_id),
            "date": int(time.time()),
        }
        if message.photo is not None:
            size = {"file_id": f"photo{message.message_id}", "file_unique_id": f"p{message.message_id}"}
            body["photo"] = [{**size, "width": 960, "height": 600, "file_size": len(message.photo)}]
            body["caption"] = message.text
            if message.entities:
                body["caption_entities"] = message.entities
        else:
            body["text"] = message.text
            if message.entities:
                body["entities"] = message.entities
        if message.reply_markup and message.reply_markup.get("inline_keyboard"):
            body["reply_markup"] = message.reply_markup
        if message.edits:
            body["edit_date"] = int(time.time())
        return body

    async def _api_sendmessage(self, params: dict[str, Any]) -> Any:
        chat_id = params["chat_id"]
        if not isinstance(chat_id, int):
            raise BadRequest("Bad Request: chat not found")
        text, entities = self._render(params)
        markup = params.get("reply_markup")
        self._check_markup(markup)
        with self._lock:
            delay = self._state.delays.get(chat_id, 0.0)
        if delay:
            await asyncio.sleep(delay)
        return self._deliver(chat_id, text, entities, str(params.get("text", "")), markup)

    def _deliver(
        self,
        chat_id: int,
        text: str,
        entities: list[dict[str, Any]],
        html: str,
        markup: dict[str, Any] | None,
        photo: bytes | None = None,
    ) -> dict[str, Any]:
        """A new message in the user's chat, as Telegram returns it to the bot."""
        with self._lock:
            message = Message(chat_id, self._state.next_message_id, text, entities, html, markup, photo=photo)
            self._state.next_message_id += 1
            # Kept even when not recording calls: edits need the message they change.
            self._state.messages.setdefault(chat_id, []).append(message)
        return self.message_json(message)

    async def _api_sendphoto(self, params: dict[str, Any]) -> Any:
        chat_id = params["chat_id"]
        if not isinstance(chat_id, int):
            raise BadRequest("Bad Request: chat not found")
        photo = params.get("photo")
        if not isinstance(photo, bytes):
            raise BadRequest("Bad Request: there is no photo in the request")
        if not photo.startswith((PNG_SIGNATURE, JPEG_SIGNATURE)):
            raise BadRequest("Bad Request: IMAGE_PROCESS_FAILED")
        if len(photo) > MAX_PHOTO_BYTES:
            raise BadRequest("Bad Request: file is too big")
        caption, entities = "", list[dict[str, Any]]()
        if params.get("caption"):
            caption, entities = self._render({**params, "text": params["caption"]})
            if len(caption) > MAX_CAPTION:
                raise BadRequest("Bad Request: message caption is too long")
        markup = params.get("reply_markup")
        self._check_markup(markup)
        return self._deliver(chat_id, caption, entities, str(params.get("caption", "")), markup, photo)

    def _find(self, params: dict[str, Any]) -> Message:
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        for message in self._state.messages.get(chat_id, []):  # type: ignore[arg-type]
            if message.message_id == message_id:
                return message
        raise BadRequest("Bad Request: message to edit not found")

    async def _api_editmessagetext(self, params: dict[str, Any]) -> Any:
        text, entities = self._render(params)
        markup = params.get("reply_markup")
        self._check_markup(markup)
        with self._lock:
            message = self._find(params)
            if (
                message.text == text
                and message.entities == entities
                and ((message.reply_markup or None) == (markup or None))
            ):
                raise BadRequest(
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message"
                )
            message.text, message.entities, message.html = text, entities, str(params["text"])
            message.reply_markup = markup
            message.edits += 1
            return self.message_json(message)

    async def _api_editmessagereplymarkup(self, params: dict[str, Any]) -> Any:
        markup = params.get("reply_markup")
        self._check_markup(markup)
        with self._lock:
            message = self._find(params)
            if (message.reply_markup or None) == (markup or None):
                raise BadRequest("Bad Request: message is not modified")
            message.reply_markup = markup
            message.edits += 1
            return self.message_json(message)

    async def _api_answercallbackquery(self, params: dict[str, Any]) -> Any:
        query_id = str(params["callback_query_id"])
        if len(str(params.get("text", "") or "")) > MAX_CALLBACK_ANSWER:
            raise BadRequest("Bad Request: MESSAGE_TOO_LONG")
        with self._lock:
            if query_id in self._state.answered:
                raise BadRequest("Bad Request: query is too old and response timeout expired or query ID is invalid")
            self._state.answered.add(query_id)
        return True

    async def _api_sendchataction(self, params: dict[str, Any]) -> Any:
        if params.get("action") not in CHAT_ACTIONS:
            raise BadRequest("Bad Request: wrong parameter action in request")
        return True

    async def _api_leavechat(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_getupdates(self, params: dict[str, Any]) -> Any:
        with self._lock:
            if self._state.webhook.get("url"):
                raise BadRequest(
                    "Conflict: can't use getUpdates method while webhook is active; use "
                    "deleteWebhook to delete the webhook first",
                    409,
                )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        assert self._new_update is not None
        while True:
            with self._lock:
                # An offset confirms every update below it: Telegram forgets them.
                self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
                ready = self._state.updates[:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self._closing:
                return ready
            async with self._new_update:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new_update.wait(), min(remaining, 0.5))

    # --- control routes (for a stand-in running as its own process) ------------------

    async def _control_calls(self, request: web.Request) -> web.Response:
        chat = request.query.get("chat_id")
        calls = self.calls(request.query.get("method"), int(chat) if chat else None)
        return web.json_response([{"method": c.method, "params": c.params} for c in calls])

    async def _control_messages(self, request: web.Request) -> web.Response:
        messages = self.messages(int(request.query["chat_id"]))
        return web.json_response([self.message_json(m) for m in messages])

    async def _control_count(self, request: web.Request) -> web.Response:
        return web.json_response({"calls": self.call_count})

    async def _control_fail(self, request: web.Request) -> web.Response:
        body = await request.json()
        methods = body.get("methods")
        self.fail_next(int(body["count"]), int(body.get("retry_after", 1)), set(methods) if methods else None)
        return web.json_response({"ok": True})

    async def _control_flood(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.flood_wait(int(body["chat_id"]), int(body["retry_after"]))
        return web.json_response({"ok": True})

    async def _control_error(self, request: web.Request) -> web.Response:
        body = await request.json()
        chat = body.get("chat_id")
        self.fail_call(
            str(body["method"]),
            int(body.get("nth", 1)),
            code=int(body.get("code", 500)),
            record=bool(body.get("record", False)),
            chat_id=int(chat) if chat is not None else None,
        )
        return web.json_response({"ok": True})

    async def _control_late(self, request: web.Request) -> web.Response:
        body = await request.json()
        chat, count, methods = body.get("chat_id"), body.get("count"), body.get("methods")
        self.answer_late(
            float(body["seconds"]),
            probability=float(body.get("probability", 1.0)),
            count=int(count) if count is not None else None,
            seed=int(body.get("seed", 0)),
            methods=set(methods) if methods else None,
            chat_id=int(chat) if chat is not None else None,
        )
        return web.json_response({"ok": True})

    async def _control_slow(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.slow_down(int(body["chat_id"]), float(body["seconds"]))
        return web.json_response({"ok": True})

    async def _control_release(self, request: web.Request) -> web.Response:
        self.release_held()
        return web.json_response({"ok": True})

    async def _control_clear(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"ok": True})

    async def _control_faults(self, request: web.Request) -> web.Response:
        """What the faults did so far: answers held late, calls refused by kind."""
        refused = self.refused()
        return web.json_response(
            {
                "late_answered": self.late_answered,
                "refused_429": sum(1 for _, _, text in refused if text.startswith("Too Many Requests")),
                "refused_5xx": sum(1 for _, _, text in refused if _is_server_error(text)),
            }
        )

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


def _too_many(retry_after: int) -> BadRequest:
    return BadRequest(f"Too Many Requests: retry after {retry_after}", 429, retry_after=retry_after)


# Telegram's words for its own failures.
_SERVER_ERRORS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def _server_error(code: int) -> BadRequest:
    return BadRequest(_SERVER_ERRORS.get(code, f"Server Error {code}"), code)


def _is_server_error(description: str) -> bool:
    return description in _SERVER_ERRORS.values() or description.startswith("Server Error")


def main() -> None:
    """Run the stand-in as its own process; prints its URL on the first line of stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-record", action="store_true", help="count calls, keep nothing")
    args = parser.parse_args()

    async def serve() -> None:
        standin = StandIn(args.token, record=not args.no_record, port=args.port)
        print(await standin.start_async(), flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
