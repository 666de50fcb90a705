"""The fix for BentoML's per-request timer leak (docs/performance.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from bentoml._internal.server.http.traffic import TimeoutMiddleware

from bentos.bentoml_patches import patch_timeout_middleware


async def _ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _slow_app(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.sleep(5)


async def _call(app: Any, timeout: float) -> tuple[list[dict[str, Any]], list[asyncio.TimerHandle]]:
    loop = asyncio.get_running_loop()
    handles: list[asyncio.TimerHandle] = []
    real_call_later = loop.call_later

    def spy(delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        handle = real_call_later(delay, callback, *args)
        handles.append(handle)
        return handle

    loop.call_later = spy  # type: ignore[method-assign,assignment]
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    try:
        await TimeoutMiddleware(app, timeout)({"type": "http"}, receive, send)
    finally:
        loop.call_later = real_call_later  # type: ignore[method-assign]
    return sent, handles


def test_the_timer_is_cancelled_once_the_response_started() -> None:
    assert patch_timeout_middleware()
    sent, handles = asyncio.run(_call(_ok_app, timeout=60))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert len(handles) == 1 and handles[0].cancelled()


def test_a_slow_request_still_times_out_with_a_504() -> None:
    assert patch_timeout_middleware()
    sent, _ = asyncio.run(_call(_slow_app, timeout=0.05))
    assert sent[0]["status"] == 504
    assert b"Not able to process the request" in sent[1]["body"]
