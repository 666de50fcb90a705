"""The monitor's store: the only code that touches the database.

`open_store(settings)` picks the backend: PostgreSQL when `database_url` is set
(`MONITOR_DATABASE_URL=postgresql://...`), else the SQLite file at `db_path`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from monitor.store.sqlite import Store


class StoreSettings(Protocol):
    @property
    def db_path(self) -> Path: ...
    @property
    def database_url(self) -> Any: ...  # SecretStr | str | None


def database_url(settings: StoreSettings) -> str | None:
    url = getattr(settings, "database_url", None)
    if url is None:
        return None
    text = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url)
    return text or None


def open_store(settings: StoreSettings) -> Store:
    """The store the settings name: PostgreSQL if `database_url` is set, else SQLite."""
    url = database_url(settings)
    if url is not None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("MONITOR_DATABASE_URL must be a postgresql:// URL")
        from monitor.store.postgres import PostgresStore

        return PostgresStore(url)

    return Store(settings.db_path)
