"""Where things are and how they are put together: the one place that wires the app.

Also what every long-running mode shares whatever its channel: the logging setup, the
loop that deletes idle conversations, and reloading the dialogs and catalogs while
serving (`ContentReloader`: on SIGHUP and on an operator's `/reload`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from bot.config import ConfigError, Settings
from bot.conversations import Advisor
from bot.engine.commands import N_
from bot.engine.engine import Engine
from bot.engine.turn import Msg
from bot.i18n.catalog import ENGLISH, Localizer
from bot.i18n.completeness import translation_problems
from bot.problems import ProblemsError
from bot.redaction import SecretFilter, secrets_of
from bot.reminders.clock import clock_for
from bot.spec.loader import load_dialogs
from bot.store import open_store

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PURGE_EVERY = timedelta(hours=1)


def dialogs_dir(explicit: Path | str | None = None) -> Path:
    """The dialogs folder: as given (a command's argument or DIALOGS_DIR), else the bundled `dialogs/`."""
    return Path(explicit or PROJECT_ROOT / "dialogs")


def locales_dir(explicit: Path | str | None = None) -> Path:
    """The catalogs folder: as given (LOCALES_DIR), else the bundled `locales/`."""
    return Path(explicit or PROJECT_ROOT / "locales")


def build_engine(dialogs: Path | str | None = None, locales: Path | str | None = None) -> tuple[Engine, Localizer]:
    """Load dialogs and catalogs; raises `SpecError` when the dialogs are broken."""
    localizer = Localizer.load(locales_dir(locales))
    spec = load_dialogs(dialogs_dir(dialogs))
    return Engine(spec, localizer.locales, localizer.translations_of), localizer


def content_problems(engine: Engine, localizer: Localizer) -> list[str]:
    """Texts of the dialogs missing from a catalog (English is the msgids themselves)."""
    others = tuple(locale for locale in localizer.locales if locale != ENGLISH)
    return translation_problems(engine.spec, localizer, others)


def load_checked(dialogs: Path | str | None = None, locales: Path | str | None = None) -> tuple[Engine, Localizer]:
    """Dialogs and catalogs that validate (as `validate` checks them), or `ProblemsError`
    with every problem as `file:line:column: message` (`SpecError` for the dialogs)."""
    engine, localizer = build_engine(dialogs, locales)
    if problems := content_problems(engine, localizer):
        raise ProblemsError(problems)
    return engine, localizer


@dataclass(frozen=True)
class Reloaded:
    """What one reload did: nothing but report `problems`, or swap in the new content."""

    problems: tuple[str, ...]
    seconds: float
    flows: int = 0
    states: int = 0
    texts: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> Msg:
        """The outcome for the operator who asked (the problems follow it, one a line)."""
        if self.ok:
            return Msg(
                N_("Reloaded in {seconds} s: {flows} flows, {states} states, {texts} texts."),
                {"seconds": f"{self.seconds:.2f}", "flows": self.flows, "states": self.states, "texts": self.texts},
            )
        return Msg(
            N_("Not reloaded: {count} problem(s); still serving the dialogs loaded before."),
            {"count": len(self.problems)},
        )

    def report(self, localizer: Localizer, locale: str, limit: int, escape: Callable[[str], str] = str) -> str:
        """The outcome, then the problems one a line, as many as fit in `limit` characters
        once escaped (a Telegram message: 4,096); the rest is counted, and in the log."""
        lines = [escape(localizer.text(self.message(), locale))]
        for index, problem in enumerate(self.problems):
            left = len(self.problems) - index
            more = escape(localizer.text(Msg(N_("… and {count} more: see the log."), {"count": left}), locale))
            line = escape(problem)
            # Room for this line, and for the "more" line unless this is the last problem.
            needed = len(line) + 1 + (len(more) + 1 if left > 1 else 0)
            if sum(len(kept) + 1 for kept in lines) + needed > limit:
                lines.append(more)
                break
            lines.append(line)
        return "\n".join(lines)


class ContentReloader:
    """Loads the dialogs and catalogs again and, if they validate, gives them to `advisor`.

    The new engine is built in a worker thread while the old one keeps answering; then
    `advisor.engine` and `advisor.localizer` are replaced in one step of the event loop,
    so a turn uses the old set or the new one, never half of each. Conversations go on:
    a session whose state no longer exists is restarted with the "updated" notice, as
    after a restart with new dialogs. Reloads run one at a time, in the order asked.
    """

    def __init__(self, advisor: Advisor, dialogs: Path | str | None, locales: Path | str | None) -> None:
        self.advisor = advisor
        self.dialogs = dialogs
        self.locales = locales
        self._lock = asyncio.Lock()

    @classmethod
    def for_settings(cls, advisor: Advisor, settings: Settings) -> ContentReloader:
        """Reloads from where the process loaded its content at start (DIALOGS_DIR, LOCALES_DIR)."""
        return cls(advisor, settings.dialogs_dir, settings.locales_dir)

    async def reload(self) -> Reloaded:
        """Load, check and swap; every problem is logged with its `file:line:column`."""
        async with self._lock:
            started = time.perf_counter()
            try:
                engine, localizer = await asyncio.to_thread(load_checked, self.dialogs, self.locales)
            except ProblemsError as error:
                problems = tuple(error.problems)
            except Exception as error:  # an unreadable folder or file: reported, never fatal
                problems = (f"{dialogs_dir(self.dialogs)}: {type(error).__name__}: {error}",)
            else:
                problems = ()
            seconds = time.perf_counter() - started
            if problems:
                for problem in problems:
                    log.error("reload refused: %s", problem)
                log.error("reload refused: %d problem(s); still serving the dialogs loaded before", len(problems))
                return Reloaded(problems, seconds)
            # One assignment, no await in between: no turn sees a half-swapped advisor.
            self.advisor.engine, self.advisor.localizer = engine, localizer
            spec = engine.spec
            done = Reloaded(
                (),
                seconds,
                flows=len(spec.flows),
                states=sum(len(flow.states) for flow in spec.flows.values()),
                texts=len({msgid for msgid, _ in spec.texts}),
            )
            log.info("reloaded dialogs and catalogs in %.2f s: %d flows, %d states", seconds, done.flows, done.states)
            return done


def reload_on_hangup(reload: Callable[[], Coroutine[object, object, Reloaded]]) -> Callable[[], None]:
    """Run `reload` on each SIGHUP (`docker kill --signal=HUP`) in the running loop; returns
    the function that removes the handler. Without it, SIGHUP would end the process."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[Reloaded]] = set()

    def on_signal() -> None:
        log.info("SIGHUP: reloading dialogs and catalogs")
        task = loop.create_task(reload())
        tasks.add(task)  # keep a reference until done (the loop holds tasks weakly)
        task.add_done_callback(tasks.discard)

    def remove() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    loop.add_signal_handler(signal.SIGHUP, on_signal)
    return remove


def assemble_advisor(settings: Settings) -> Advisor:
    """Everything a channel needs; the store is not connected yet (`await advisor.store.open()`)."""
    engine, localizer = build_engine(settings.dialogs_dir, settings.locales_dir)
    try:
        store = open_store(settings.database_url, hash_key=settings.event_hash_key)
    except ValueError as error:
        # The store's own words (never the URL, which may hold a password): one line at
        # start, like every other configuration problem.
        said = str(error)
        raise ConfigError([said if said.startswith("DATABASE_URL") else f"DATABASE_URL: {said}"]) from None
    return Advisor(engine, store, localizer, clock=clock_for(settings.clock_offset_file))


async def build_advisor(settings: Settings) -> Advisor:
    """Everything a channel needs, with the store opened and migrated."""
    advisor = assemble_advisor(settings)
    await advisor.store.open()
    return advisor


def configure_logging(level: str, settings: Settings | None = None) -> None:
    """Log lines on stderr with no secret in them, whatever the level.

    Every root handler gets the one `SecretFilter` (the settings' own secrets, and
    anything shaped like a token or a password), so a library's DEBUG line, an exception
    text or an uncaught traceback is redacted before it is printed; uvicorn logs through
    these handlers too (it is started with `log_config=None`). Uncaught exceptions and
    Python warnings are routed through logging for the same reason.
    """
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(level)
    secret_filter = SecretFilter(secrets_of(settings) if settings is not None else ())
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, SecretFilter)]:
            handler.removeFilter(old)
        handler.addFilter(secret_filter)
    logging.captureWarnings(True)
    # httpx prints every request URL at INFO, and transitions narrates every state change:
    # noise at the scale of a busy bot. At DEBUG the operator asked for everything (the
    # filter still keeps the token out of those URLs).
    chatty = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ("httpx", "httpcore", "transitions"):
        logging.getLogger(name).setLevel(chatty)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    """An uncaught exception, through the (redacting) log handlers instead of raw stderr."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger("bot").critical("uncaught exception", exc_info=(kind, error, trace))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


async def purge_forever(advisor: Advisor, ttl_days: int) -> None:
    """Delete conversations idle for `ttl_days`, now and every hour (privacy by default)."""
    while True:
        try:
            idle_since = datetime.now(UTC) - timedelta(days=ttl_days)
            purged = await advisor.store.purge_idle(idle_since)
            if purged:
                log.info("purged %d idle conversations", purged)
        except Exception:
            log.warning("purging idle conversations failed; will try again", exc_info=True)
        await asyncio.sleep(PURGE_EVERY.total_seconds())
