"""Durable conversations: pick a store by `DATABASE_URL`.

``sqlite:///data/bot.sqlite3`` (the default, one process) or
``postgresql://user@host/db`` (several replicas). See `bot.store.base` for the
interface and `docs/design.md` for why.

Event hash key: events keep a chat only as HMAC-SHA256(key, chat key). The key comes
from the ``hash_key`` argument (EVENT_HASH_KEY in the settings), else a random key
generated once and kept in the database's ``store_secrets`` table.

The SQL both databases share (schema, migrations, upsert, erase, prune) is written once
in `bot.store.sql`; each store keeps only its dialect and its locking.
"""

from __future__ import annotations

from bot.store.base import Change, Conversation, Reminder, Store, StoreUnavailable

__all__ = ["Change", "Conversation", "Reminder", "Store", "StoreUnavailable", "open_store"]


def open_store(url: str, *, hash_key: bytes | None = None) -> Store:
    """The store for `url`, not yet connected: ``await store.open()`` before use
    (and ``await store.close()`` at the end).

    ``sqlite:///relative/path`` or ``sqlite:////abs/path`` gives a `SqliteStore`;
    ``postgresql://…`` or ``postgres://…`` a `PostgresStore`. Anything else raises
    ValueError. The URL itself is never logged or echoed (it may hold a password).
    """
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme == "sqlite":
        from bot.store.sqlite import SqliteStore

        return SqliteStore(url, hash_key=hash_key)
    if sep and scheme in ("postgresql", "postgres"):
        # Imported here so a SQLite deployment never needs psycopg importable.
        from bot.store.postgres import PostgresStore

        return PostgresStore(url, hash_key=hash_key)
    shown = f"{scheme!r}" if sep else "none"
    raise ValueError(
        f"unsupported DATABASE_URL scheme {shown}: use sqlite:///path/to/file.sqlite3 or postgresql://user@host/dbname"
    )
