"""One store fixture for both backends: every test that takes `store` runs on a SQLite file
and on a database of a real PostgreSQL server (tests/support/postgres.py), through
`open_store`, typed as the `Store` protocol callers use. `where` names the same database for
the tests that open it themselves (two instances, a writer process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.store import Store, open_store
from tests.support.postgres import (  # noqa: F401 (fixtures)
    Where,
    backend_where_fixture,
    pg_cluster,
    pg_database_url,
)


@pytest.fixture
def where(backend_where: Where) -> Where:
    """A fresh database on each backend (the test runs twice: sqlite, postgres)."""
    return backend_where


@pytest.fixture
def store(where: Where) -> Iterator[Store]:
    with open_store(where) as st:
        yield st
