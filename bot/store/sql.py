"""The SQL both stores share, written once: the schema and its migrations, and every
statement whose text is the same in SQLite and PostgreSQL (upsert, erase, prune, …).

What differs between them in the text is a `Dialect`: column types and the parameter
placeholder. How a timestamp or a JSON document is passed, locking, transactions and connections differ
too much to share and stay in `sqlite.py` and `postgres.py`.

SQLite 3.35 or later is needed (``RETURNING``); upserts use ``ON CONFLICT``, which both
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
    due_reminders: str
    count_sessions: str
    count_events: str

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
            ),
            prune_processed=r("DELETE FROM processed_updates WHERE processed_at < ?"),
            purge_idle=r("DELETE FROM sessions WHERE updated_at < ?"),
            insert_event=r("INSERT INTO events (name, chat_hash, data, created_at) VALUES (?, ?, ?, ?)"),
            insert_reminder=r("INSERT INTO reminders (chat_key, due_at, payload) VALUES (?, ?, ?) RETURNING id"),
            due_reminders=r(
                "SELECT id, chat_key, due_at, payload FROM reminders"
                " WHERE sent_at IS NULL AND due_at <= ? ORDER BY due_at, id LIMIT ?"
            ),
            count_sessions="SELECT count(*) FROM sessions",
            count_events="SELECT name, count(*) FROM events GROUP BY name ORDER BY name",
        )


def erase_parameters(chat_key: str, hashed: str) -> tuple[tuple[str], ...]:
    """The parameters of `Statements.erase_chat`, in order."""
    return ((chat_key,), (chat_key,), (chat_key,), (hashed,))
