"""The monitor's store: the only code that touches the database, on SQLite or PostgreSQL.

Callers type against the `Store` protocol (protocol.py); `open_store(settings.store)` picks the
backend: `PostgresStore` when `database_url` is set (`MONITOR_DATABASE_URL=postgresql://...`),
else `SqliteStore` on the file at `db_path`. The errors and plain types callers see are in
types.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from monitor.store.protocol import Store
from monitor.store.sqlite import SqliteStore

__all__ = ["Store", "StoreSettings", "database_url", "open_store"]


class StoreSettings(Protocol):
    @property
    def db_path(self) -> Path: ...
    @property
    def database_url(self) -> SecretStr | str | None: ...


def database_url(settings: StoreSettings) -> str | None:
    url = getattr(settings, "database_url", None)
    if url is None:
        return None
    text = url.get_secret_value() if isinstance(url, SecretStr) else str(url)
    return text or None


def open_store(settings: StoreSettings) -> Store:
    """The store the settings name: PostgreSQL if `database_url` is set, else SQLite."""
    url = database_url(settings)
    if url is not None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("MONITOR_DATABASE_URL must be a postgresql:// URL")
        from monitor.store.postgres import PostgresStore

        return PostgresStore(url)

    return SqliteStore(settings.db_path)
