"""A fix for BentoML 1.4's request-timeout middleware, applied when the service is imported.

`TimeoutMiddleware` schedules `loop.call_later(timeout, ...)` for every request and never
cancels it, so each request leaves a TimerHandle, a bound method, a Future and a Context
alive for `traffic.timeout` seconds. At ~1,000 req/s that keeps the old generation growing
and makes full garbage collections frequent and long: they were the predictor's p99
(docs/performance.md). This is the same middleware with the timer cancelled once the
response has started. It touches private BentoML API, hence the `<1.5` pin and the check.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger("modelguard.predictor")


def patch_timeout_middleware() -> bool:
    """Install the fix; False (and a warning) when this BentoML no longer looks as expected."""
    try:
        from bentoml._internal.server.http import traffic
        from starlette.responses import JSONResponse
    except ImportError:  # pragma: no cover - depends on the installed BentoML
        logger.warning("BentoML traffic middleware not found: timeout-timer fix not applied")
        return False
    middleware = getattr(traffic, "TimeoutMiddleware", None)
    if middleware is None or not hasattr(middleware, "_set_timer_out"):
        logger.warning("unexpected BentoML TimeoutMiddleware: timeout-timer fix not applied")
        return False

    async def call_cancelling_timer(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def _send(message: Any) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
        try:
            await waiter
        except TimeoutError:
            if fut.cancel():
                body = {"error": f"Not able to process the request in {self.timeout} seconds"}
                await JSONResponse(body, status_code=504)(scope, receive, send)
        else:
            await fut
        finally:
            timer.cancel()

    middleware.__call__ = call_cancelling_timer
    return True
