"""Why the service refuses a request, by meaning; the API maps each to a status code
(monitor/api/routes/service_errors.py), the CLI to a message and an exit code.

`loc` names the field of the request the refusal is about (None: the request as a whole),
so a caller can point at it (the API's `ErrorBody.errors[].loc`).
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request the monitor refuses, changing nothing."""

    def __init__(self, message: str, loc: str | None = None) -> None:
        super().__init__(message)
        self.message, self.loc = message, loc


class UnusableError(ServiceError):
    """The payload cannot be used at all (an artifact that does not load)."""


class InvalidError(ServiceError):
    """A value is readable but wrong (an artifact that cannot score its reference rows)."""


class NotFoundError(ServiceError):
    """The model or version named is unknown, or not in the state the request needs."""


class ConflictError(ServiceError):
    """The request contradicts what is stored (changed content under a stored version, a
    rejected version declared known-good, a candidate a ModelMonitor's spec declares)."""
