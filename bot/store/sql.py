"""The SQL both stores share, written once: the schema and its migrations, and every
statement whose text is the same in SQLite and PostgreSQL (upsert, erase, prune, …).

What differs between them in the text is a `Dialect`: column types and the parameter
placeholder. How a timestamp or a JSON document is passed, locking, transactions and connections differ
too much to share and stay in `sqlite.py` and `postgres.py`.

SQLite 3.35 or later is needed (``RETURNING``, also in ``UPDATE``); upserts use ``ON CONFLICT``, which both
understand alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("bot.store")


@dataclass(frozen=True)
class Dialect:
    """How one database spells what the shared SQL needs."""

    name: str
    # Column types by the schema's names for them: text, json, time, bytes, int, bigint, id.
    types: dict[str, str]
    placeholder: str

    def render(self, statement: str) -> str:
        """`statement` with this dialect's types and placeholders (`?` in the source)."""
        return statement.format_map(self.types).replace("?", self.placeholder)


#: Ordered migrations; migration ``i`` (1-based) is ``MIGRATIONS[i - 1]``. Never edit a
#: released entry: append a new one. Each is a list of statements (not a script: SQLite's
#: ``executescript`` would commit the surrounding transaction). Timestamps in SQLite are
#: ISO-8601 text in UTC with microseconds and "+00:00": fixed width, so comparing the
#: text compares the instants.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE sessions (
            chat_key   {text} PRIMARY KEY,
            data       {json} NOT NULL,
            flow       {text} NOT NULL,
            state      {text} NOT NULL,
            locale     {text} NOT NULL,
            version    {int} NOT NULL,
            created_at {time} NOT NULL,
            updated_at {time} NOT NULL
        )""",
        "CREATE INDEX sessions_updated_at_idx ON sessions (updated_at)",
        # Keyed by chat too: update ids are unique per bot, not per store.
        """CREATE TABLE processed_updates (
            chat_key     {text} NOT NULL,
            update_id    {bigint} NOT NULL,
            processed_at {time} NOT NULL,
            PRIMARY KEY (chat_key, update_id)
        )""",
        "CREATE INDEX processed_updates_processed_at_idx ON processed_updates (processed_at)",
        """CREATE TABLE reminders (
            id       {id},
            chat_key {text} NOT NULL,
            due_at   {time} NOT NULL,
            payload  {json} NOT NULL,
            sent_at  {time}
        )""",
        "CREATE INDEX reminders_due_idx ON reminders (due_at) WHERE sent_at IS NULL",
        "CREATE INDEX reminders_chat_key_idx ON reminders (chat_key)",
        """CREATE TABLE events (
            id         {id},
            name       {text} NOT NULL,
            chat_hash  {text} NOT NULL,
            data       {json} NOT NULL,
            created_at {time} NOT NULL
        )""",
        "CREATE INDEX events_chat_hash_idx ON events (chat_hash)",
        "CREATE INDEX events_name_idx ON events (name)",
        # The event hash key, generated once when none is configured.
        """CREATE TABLE store_secrets (
            name  {text} PRIMARY KEY,
            value {bytes} NOT NULL
        )""",
    ),
    (
        # The transactional outbox: a turn's outgoing messages, committed with its
        # session, deleted once sent. A row is fresh (owner and hold_until NULL),
        # claimed (owner and hold_until: a sender's lease) or deferred (hold_until
        # only: nobody sends before it).
        """CREATE TABLE outbox (
            id         {id},
            chat_key   {text} NOT NULL,
            payload    {json} NOT NULL,
            created_at {time} NOT NULL,
            owner      {text},
            hold_until {time},
            attempts   {int} NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX outbox_chat_key_idx ON outbox (chat_key, id)",
        # pending_chats: fresh rows by age, held rows by when the hold ends.
        "CREATE INDEX outbox_fresh_idx ON outbox (created_at) WHERE hold_until IS NULL",
        "CREATE INDEX outbox_held_idx ON outbox (hold_until) WHERE hold_until IS NOT NULL",
        # probe_write's row: a committed write proves the store can commit.
        """CREATE TABLE heartbeat (
            name {text} PRIMARY KEY,
            at   {time} NOT NULL
        )""",
        # Store.events(since) for the funnel statistics.
        "CREATE INDEX events_created_at_idx ON events (created_at)",
    ),
    (
        # Reminders and check-ins (bot/reminders): `kind` is monthly, checkin (promised)
        # or asked (sent, waiting for the answer); `due_at` is the next occurrence;
        # `payload` the person's schedule and what that occurrence is. A row is
        # advanced (or deleted) in the transaction that queues its message, so nothing
        # marks it sent; the reminder loop claims rows by `due_at` alone.
        "DROP INDEX reminders_due_idx",
        "ALTER TABLE reminders DROP COLUMN sent_at",
        "ALTER TABLE reminders ADD COLUMN kind {text} NOT NULL DEFAULT 'monthly'",
        "CREATE INDEX reminders_due_at_idx ON reminders (due_at)",
    ),
)


def pending_migrations(done: set[int]) -> list[tuple[int, tuple[str, ...]]]:
    """The migrations not in `done`, in order; warns when the database is newer than the code."""
    newest = max(done | {len(MIGRATIONS)})
    if newest > len(MIGRATIONS):
        log.warning("the database schema (v%d) is newer than this code (v%d)", newest, len(MIGRATIONS))
    return [(version, statements) for version, statements in enumerate(MIGRATIONS, start=1) if version not in done]


def schema_version(done: set[int]) -> int:
    """The schema version once the pending migrations are applied."""
    return max(done | {len(MIGRATIONS)})


#: Heartbeat rows of senders (`Store.beat`) are named this plus the owner id (spelled
#: out in the SQL of claim_outbox, pending_chats and prune_owner_beats).
OWNER_BEAT_PREFIX = "owner:"


@dataclass(frozen=True)
class Statements:
    """Every shared statement, rendered for one dialect (see `for_dialect`)."""

    migrations: tuple[tuple[str, ...], ...]
    create_migrations_table: str
    applied_versions: str
    record_migration: str
    keep_secret: str
    read_secret: str
    load_session: str
    seen_update: str
    upsert_session: str
    record_update: str
    # /forget: every row that mentions the chat, events through their hash. The update
    # id is not recorded either: that row would mention the chat.
    erase_chat: tuple[str, ...]
    prune_processed: str
    purge_idle: str
    insert_event: str
    insert_reminder: str
    # The reminder loop: due rows, oldest first (PostgreSQL adds FOR UPDATE SKIP LOCKED).
    due_reminders: str
    chat_reminders: str
    # A fired row, advanced or deleted only if it is still due when it was read.
    advance_reminder: str
    retire_reminder: str
    # A conversation block's changes (`Conversation.remind`), on the block's chat only.
    close_reminders: str
    drop_reminder: str
    move_reminder: str
    count_sessions: str
    count_events: str
    all_events: str
    events_since: str
    insert_outbox: str
    # Run alone under the chat's claim lock (SQLite's write lock, PostgreSQL's advisory
    # lock): two claims never both see the chat free.
    claim_outbox: str
    release_outbox: str
    delete_outbox: str
    defer_outbox: str
    pending_chats: str
    beat: str
    prune_owner_beats: str

    @classmethod
    def for_dialect(cls, dialect: Dialect) -> Statements:
        """Render the shared SQL for `dialect`."""
        r = dialect.render
        return cls(
            migrations=tuple(tuple(r(s) for s in statements) for statements in MIGRATIONS),
            create_migrations_table=r(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version {int} PRIMARY KEY, applied_at {time} NOT NULL)"
            ),
            applied_versions="SELECT version FROM schema_migrations",
            record_migration=r("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"),
            keep_secret=r("INSERT INTO store_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"),
            read_secret=r("SELECT value FROM store_secrets WHERE name = ?"),
            load_session=r("SELECT data FROM sessions WHERE chat_key = ?"),
            seen_update=r("SELECT 1 FROM processed_updates WHERE chat_key = ? AND update_id = ?"),
            upsert_session=r(
                """INSERT INTO sessions
                       (chat_key, data, flow, state, locale, version, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (chat_key) DO UPDATE SET
                       data = excluded.data, flow = excluded.flow, state = excluded.state,
                       locale = excluded.locale, version = excluded.version,
                       updated_at = excluded.updated_at"""
            ),
            # A plain INSERT: a duplicate here would mean the chat lock failed, and the
            # primary key then refuses the second application.
            record_update=r("INSERT INTO processed_updates (chat_key, update_id, processed_at) VALUES (?, ?, ?)"),
            erase_chat=(
                r("DELETE FROM sessions WHERE chat_key = ?"),
                r("DELETE FROM reminders WHERE chat_key = ?"),
                r("DELETE FROM processed_updates WHERE chat_key = ?"),
                r("DELETE FROM events WHERE chat_hash = ?"),
                r("DELETE FROM outbox WHERE chat_key = ?"),
            ),
            prune_processed=r("DELETE FROM processed_updates WHERE processed_at < ?"),
            purge_idle=r("DELETE FROM sessions WHERE updated_at < ?"),
            insert_event=r("INSERT INTO events (name, chat_hash, data, created_at) VALUES (?, ?, ?, ?)"),
            insert_reminder=r(
                "INSERT INTO reminders (chat_key, kind, due_at, payload) VALUES (?, ?, ?, ?) RETURNING id"
            ),
            due_reminders=r(
                "SELECT id, chat_key, kind, due_at, payload FROM reminders"
                " WHERE due_at <= ? ORDER BY due_at, id LIMIT ?"
            ),
            chat_reminders=r(
                "SELECT id, chat_key, kind, due_at, payload FROM reminders WHERE chat_key = ? ORDER BY due_at, id"
            ),
            advance_reminder=r("UPDATE reminders SET kind = ?, due_at = ?, payload = ? WHERE id = ? AND due_at = ?"),
            retire_reminder=r("DELETE FROM reminders WHERE id = ? AND due_at = ?"),
            close_reminders=r("DELETE FROM reminders WHERE chat_key = ? AND kind = ? RETURNING id"),
            drop_reminder=r("DELETE FROM reminders WHERE id = ? AND chat_key = ?"),
            move_reminder=r(
                "UPDATE reminders SET due_at = ?, payload = ? WHERE id = ? AND chat_key = ? AND due_at = ? RETURNING id"
            ),
            count_sessions="SELECT count(*) FROM sessions",
            count_events="SELECT name, count(*) FROM events GROUP BY name ORDER BY name",
            all_events="SELECT name, chat_hash, data, created_at FROM events ORDER BY created_at, id",
            events_since=r(
                "SELECT name, chat_hash, data, created_at FROM events WHERE created_at >= ? ORDER BY created_at, id"
            ),
            insert_outbox=r("INSERT INTO outbox (chat_key, payload, created_at) VALUES (?, ?, ?)"),
            # The chat's oldest rows, unless a deferral or another owner's live claim
            # (lease not ended, owner beating) holds any of its rows. RETURNING gives no
            # order: the caller sorts.
            claim_outbox=r(
                """UPDATE outbox SET owner = ?, hold_until = ?
                   WHERE id IN (SELECT id FROM outbox WHERE chat_key = ? ORDER BY id LIMIT ?)
                     AND NOT EXISTS (SELECT 1 FROM outbox AS h WHERE h.chat_key = ? AND h.hold_until > ?
                                     AND (h.owner IS NULL OR (h.owner <> ? AND EXISTS (
                                         SELECT 1 FROM heartbeat AS b
                                         WHERE b.name = 'owner:' || h.owner AND b.at >= ?))))
                   RETURNING id, chat_key, payload, attempts"""
            ),
            release_outbox=r("UPDATE outbox SET owner = NULL, hold_until = NULL WHERE owner = ?"),
            delete_outbox=r("DELETE FROM outbox WHERE id = ?"),
            # SET expressions read the row as it was: only claimed rows count an attempt.
            defer_outbox=r(
                """UPDATE outbox SET owner = NULL, hold_until = ?,
                       attempts = attempts + CASE WHEN owner IS NULL THEN 0 ELSE 1 END
                   WHERE chat_key = ?"""
            ),
            # Claimable rows of chats nobody holds: fresh for `older_than` (read through
            # outbox_fresh_idx), or held with the hold ended or the owner silent (through
            # outbox_held_idx: only rows in flight, not the whole outbox). A chat's age
            # is its oldest row's id.
            pending_chats=r(
                """SELECT c.chat_key FROM (
                       SELECT chat_key, id FROM outbox
                       WHERE hold_until IS NULL AND owner IS NULL AND created_at <= ?
                       UNION ALL
                       SELECT chat_key, id FROM outbox AS o
                       WHERE hold_until IS NOT NULL AND (hold_until <= ? OR (owner IS NOT NULL AND NOT EXISTS (
                           SELECT 1 FROM heartbeat AS b WHERE b.name = 'owner:' || o.owner AND b.at >= ?)))
                   ) AS c
                   WHERE NOT EXISTS (SELECT 1 FROM outbox AS h WHERE h.chat_key = c.chat_key AND h.hold_until > ?
                                     AND (h.owner IS NULL OR EXISTS (
                                         SELECT 1 FROM heartbeat AS b
                                         WHERE b.name = 'owner:' || h.owner AND b.at >= ?)))
                   GROUP BY c.chat_key ORDER BY min(c.id) LIMIT ?"""
            ),
            beat=r("INSERT INTO heartbeat (name, at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET at = excluded.at"),
            # Owners that stopped beating long ago (one row per process that ever sent).
            prune_owner_beats=r("DELETE FROM heartbeat WHERE substr(name, 1, 6) = 'owner:' AND at < ?"),
        )


def erase_parameters(chat_key: str, hashed: str) -> tuple[tuple[str], ...]:
    """The parameters of `Statements.erase_chat`, in order."""
    return ((chat_key,), (chat_key,), (chat_key,), (hashed,), (chat_key,))


def claim_parameters(
    chat_key: str, owner: str, now: object, until: object, alive_since: object, limit: int
) -> tuple[object, ...]:
    """The parameters of `Statements.claim_outbox`, in order (times as the dialect
    passes them; `alive_since`: owners that beat since then are alive)."""
    return (owner, until, chat_key, limit, chat_key, now, owner, alive_since)


def pending_parameters(fresh_before: object, now: object, alive_since: object, limit: int) -> tuple[object, ...]:
    """The parameters of `Statements.pending_chats`, in order."""
    return (fresh_before, now, alive_since, now, alive_since, limit)


def owner_beat_name(owner: str) -> str:
    """The heartbeat row of sender `owner` (`Store.beat`)."""
    return OWNER_BEAT_PREFIX + owner
