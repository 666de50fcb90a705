"""The service's refusals (monitor/service/errors.py) as HTTP answers: one table, so every
route answers the same refusal with the same status code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from monitor.api.http import ApiError
from monitor.service.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    ServiceError,
    UnusableError,
)

STATUS: dict[type[ServiceError], int] = {
    UnusableError: 400,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidError: 422,
}


@contextmanager
def answered() -> Iterator[None]:
    """Run a service call; a `ServiceError` becomes an `ApiError` with its status and loc."""
    try:
        yield
    except ServiceError as exc:
        status = next(code for kind, code in STATUS.items() if isinstance(exc, kind))
        raise ApiError(status, exc.message, exc.loc) from None
