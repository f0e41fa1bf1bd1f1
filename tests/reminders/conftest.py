"""The store contract fixtures (`store`, `harness`: SQLite, and PostgreSQL when
TEST_DATABASE_URL is set), for the reminder rows' tests."""

from tests.store.conftest import Harness, harness, make_harness, postgres_reachable, store  # noqa: F401
