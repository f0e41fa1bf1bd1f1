"""Putting the Telegram channel together for both run modes, and `run_polling`.

Both modes use the same pieces, built in one order so nothing is attached afterwards:
the Bot (the Bot API root from TELEGRAM_API_URL, the `ChatRateLimiter`: the overall
rate, and a 429 pausing only its chat), the sender on that bot, the outbox's `Delivery`
on the store and the sender, the router on the advisor, the sender and the delivery,
the per-chat ordered processor with the router's "one moment" as its overflow
callback, and the PTB `Application` around them. Polling lets PTB's updater fetch and
dispatch to the router; the webhook (bot.web) hands each update to the processor
itself. Both start the delivery once the bot is initialised and stop it before the
bot shuts down (`TelegramChannel.start_delivery` / `stop_delivery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from telegram import Update
from telegram.error import InvalidToken
from telegram.ext import Application, ApplicationBuilder, ExtBot, TypeHandler
from telegram.request import HTTPXRequest

from bot.channels.telegram.adapter import ALLOWED_UPDATES, TelegramAdapter
from bot.channels.telegram.delivery import Delivery, DeliveryPolicy
from bot.channels.telegram.effects import chat_key
from bot.channels.telegram.outcome import Outcome
from bot.channels.telegram.processor import ChatOrderedProcessor
from bot.channels.telegram.ratelimit import ChatRateLimiter
from bot.channels.telegram.sender import TelegramSender
from bot.config import Settings
from bot.conversations import Advisor
from bot.reminders.firing import Firer, FiringPolicy
from bot.reminders.loop import ReminderLoop, rate_for
from bot.runtime import ContentReloader

log = logging.getLogger(__name__)

# Connections to the Bot API. Sends leave from the outbox, after the webhook has
# answered, so a few connections carry Telegram's 30 messages a second; and httpcore
# scans every pooled connection on each request: at 128 that scan was a third of an
# update's CPU (profiled on new users' /start).
CONNECTION_POOL = 16
POOL_TIMEOUT = 30
# A chat's backlog: one update running and a few waiting; beyond it, "one moment".
CHAT_BACKLOG = 5
# At a stop, sends in flight get this long to finish before they are cancelled.
DELIVERY_GRACE = 5.0


@dataclass(frozen=True)
class TelegramChannel:
    """The assembled channel: PTB's application (it owns the bot's connections), the
    router and the processor updates go through."""

    application: Application  # type: ignore[type-arg]
    router: TelegramAdapter
    processor: ChatOrderedProcessor
    delivery: Delivery
    # Fires due reminders and check-ins into the outbox; runs while the delivery does.
    reminders: ReminderLoop | None = None

    async def handle(self, update: Update) -> Outcome:
        """Handle one update in its chat's order; what became of it."""
        return await self.processor.run(update, self.router.handle(update))

    async def start_delivery(self) -> None:
        """Send outboxes: what earlier processes left at once, then as updates commit;
        and fire reminders as they come due."""
        await self.delivery.start()
        if self.reminders is not None:
            self.reminders.start()

    async def stop_delivery(self) -> None:
        """Let sends in flight finish (a few seconds at most); the rest waits in the
        outbox for the next start."""
        if self.reminders is not None:
            await self.reminders.stop()  # a claim is all or nothing: nothing half-fired
        await self.delivery.stop(grace=DELIVERY_GRACE)


def build_bot(settings: Settings) -> ExtBot[None]:
    """The Bot API client: TELEGRAM_API_URL, the rate limiter, a pool for many chats
    (each call sets its own timeouts: see `sender`)."""
    return ExtBot(
        settings.telegram_bot_token,
        base_url=settings.bot_api_base_url,
        base_file_url=settings.bot_api_file_url,
        request=HTTPXRequest(connection_pool_size=CONNECTION_POOL, pool_timeout=POOL_TIMEOUT),
        rate_limiter=ChatRateLimiter(settings.telegram_max_rate),
    )


def build_channel(settings: Settings, advisor: Advisor, *, webhook: bool) -> TelegramChannel:
    """Bot, sender, delivery, router, processor and application, each given what it needs."""
    bot = build_bot(settings)
    sender = TelegramSender(bot)
    delivery = Delivery(advisor.store, sender.perform, DeliveryPolicy(max_sending=CONNECTION_POOL))
    reloader = ContentReloader.for_settings(advisor, settings)  # /reload, and SIGHUP in the webhook
    router = TelegramAdapter(advisor, sender, settings.admin_ids, delivery, reloader)
    processor = ChatOrderedProcessor(
        max_backlog=CHAT_BACKLOG,
        on_overflow=router.one_moment,
        backlog=lambda chat_id: delivery.backlog(chat_key(chat_id)),
    )
    builder = ApplicationBuilder().bot(bot).concurrent_updates(processor)
    if webhook:
        # The webhook hands updates to `TelegramChannel.handle`; no updater, no handlers.
        application = builder.updater(None).build()
    else:
        application = builder.build()
        application.add_handler(TypeHandler(Update, router.on_update))
    # A user who blocked the bot: their reminders and check-ins stop.
    delivery.on_blocked = router.desk.switch_off
    firer = Firer(
        lambda: advisor.engine,
        router.reminders.render,
        FiringPolicy(late_window=timedelta(minutes=settings.reminder_late_minutes)),
    )
    reminders = ReminderLoop(
        advisor.store, firer, delivery.wake, clock=advisor.clock, rate=rate_for(settings.telegram_max_rate)
    )
    return TelegramChannel(application, router, processor, delivery, reminders)


def run_polling(settings: Settings) -> None:
    """Run the bot by long polling (development). Blocks until Ctrl-C / SIGTERM."""
    from bot.runtime import assemble_advisor, configure_logging, purge_forever

    configure_logging(settings.log_level, settings)
    # The store is opened on PTB's event loop (post_init), not here: its connections
    # belong to the loop that uses them.
    advisor = assemble_advisor(settings)
    channel = build_channel(settings, advisor, webhook=False)
    tasks: list[asyncio.Task[None]] = []

    async def post_init(app: Application) -> None:  # type: ignore[type-arg]
        await advisor.store.open()
        await channel.router.set_commands()
        await channel.start_delivery()
        tasks.append(asyncio.get_running_loop().create_task(purge_forever(advisor, settings.session_ttl_days)))
        log.info("polling as @%s", app.bot.username)

    async def post_stop(app: Application) -> None:  # type: ignore[type-arg]
        # Before PTB shuts the bot down: sends in flight still have its connections.
        await channel.stop_delivery()

    async def post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await advisor.store.close()

    channel.application.post_init = post_init
    channel.application.post_stop = post_stop
    channel.application.post_shutdown = post_shutdown
    try:
        channel.application.run_polling(allowed_updates=list(ALLOWED_UPDATES))
    except InvalidToken:
        # PTB's message quotes the token: one line of our own instead, as the webhook says it.
        log.error("%s", refused_token(settings.telegram_api_url))
        raise SystemExit(1) from None


def refused_token(api_url: str) -> str:
    """What both run modes say when Telegram refuses the token (PTB's own message quotes it)."""
    return f"The Bot API at {api_url} refused TELEGRAM_BOT_TOKEN (401 Unauthorized): check the token with @BotFather."
