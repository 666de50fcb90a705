"""Kubernetes API failures as exception classes, mapped in one place (as kopf does).

Why: callers decide by kind of failure (a 404 means "gone", a 409 "someone else wrote
first", 429/5xx and timeouts "try again"), and reading `exc.status` or exception module
names at every call site is how such decisions drift apart. Every API call of the adapter
goes through `translated`, so the rest of `monitor/kube/` only catches these classes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error


class KubeError(Exception):
    """An API call failed; `status` is the HTTP status when the server answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):  # noqa: N818 (named after the API's reason, like kopf)
    """404: the object (or its kind) does not exist."""


class Conflict(KubeError):  # noqa: N818
    """409: a concurrent write won, or the object already exists."""


class Invalid(KubeError):  # noqa: N818
    """422 (or a failed JSON-patch `test`): the request was refused as it stands."""


class Forbidden(KubeError):  # noqa: N818
    """401/403: RBAC does not allow it; retrying will not help."""


class Transient(KubeError):  # noqa: N818
    """Worth retrying: 429, any 5xx, a timeout or a dropped connection."""


class ServerError(Transient):
    """5xx (or 429): the API server could not serve the request now."""


class Timeout(Transient):
    """No answer in time, or the connection failed."""


def classify(exc: BaseException) -> KubeError | None:
    """The class for a client-side exception; None when it is not an API failure."""
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, ApiException):
        status = int(exc.status) if isinstance(exc.status, int) else None
        message = f"{status} {exc.reason}".strip()
        if status == 404:
            return NotFound(message, status)
        if status == 409:
            return Conflict(message, status)
        if status == 422:
            return Invalid(message, status)
        if status in (401, 403):
            return Forbidden(message, status)
        if status is not None and (status == 429 or status >= 500):
            return ServerError(message, status)
        return KubeError(message, status)
    if isinstance(exc, Urllib3Error | socket.timeout | TimeoutError | ConnectionError):
        return Timeout(f"{exc.__class__.__name__}: {exc}")
    return None


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise client exceptions as `KubeError` subclasses (the original is the cause)."""
    try:
        yield
    except Exception as exc:
        mapped = classify(exc)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc
