"""Kubernetes API failures map to one exception class each, in one place."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ReadTimeoutError

from monitor.kube import errors


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, errors.NotFound),
        (409, errors.Conflict),
        (422, errors.Invalid),
        (401, errors.Forbidden),
        (403, errors.Forbidden),
        (429, errors.ServerError),
        (500, errors.ServerError),
        (503, errors.ServerError),
        (400, errors.KubeError),
    ],
)
def test_api_statuses_map_to_classes(status: int, cls: type[errors.KubeError]) -> None:
    mapped = errors.classify(ApiException(status=status, reason="Reason"))
    assert type(mapped) is cls
    assert mapped is not None and mapped.status == status
    assert isinstance(mapped, errors.Transient) == (status == 429 or status >= 500)


@pytest.mark.parametrize(
    "exc",
    [
        ReadTimeoutError(None, "/apis", "read timed out"),  # type: ignore[arg-type]
        TimeoutError("timed out"),
        ConnectionRefusedError("refused"),
    ],
)
def test_timeouts_and_dropped_connections_are_transient(exc: Exception) -> None:
    assert isinstance(errors.classify(exc), errors.Timeout)


def test_other_exceptions_are_not_api_failures() -> None:
    assert errors.classify(ValueError("a bug")) is None
    with pytest.raises(ValueError), errors.translated():
        raise ValueError("a bug")


def test_translated_keeps_the_original_as_the_cause() -> None:
    original = ApiException(status=409, reason="Conflict")
    with pytest.raises(errors.Conflict) as caught, errors.translated():
        raise original
    assert caught.value.__cause__ is original
