"""Register the served model version with the monitor, in the background.

Serving never waits for this: the monitor may start later than the predictor, be
restarted, or be briefly unreachable. The payload (schema, reference set, hold-out metrics
and the booster as UBJSON, never pickle) is built by `bentos.packaging` from the model
in the store; the POST is idempotent on the monitor's side (200 for the same content again),
so retrying until it lands is safe. A 4xx other than 408/429 means the monitor refused the
content or the token: retrying cannot help, so it is logged and retries stop. The token is
sent only in the Authorization header and never logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx
from pydantic import SecretStr

logger = logging.getLogger("modelguard.registration")

RETRYABLE_4XX = {408, 429}


class RegistrationClient:
    """POST `/v1/models` with backoff until 200/201 or a final refusal."""

    def __init__(
        self,
        monitor_url: str,
        token: SecretStr | None,
        payload: Callable[[], bytes],
        on_result: Callable[[bool], None] = lambda ok: None,
        backoff_initial_seconds: float = 1.0,
        backoff_max_seconds: float = 60.0,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.url = monitor_url.rstrip("/") + "/v1/models"
        self._token = token
        self._payload = payload
        self._on_result = on_result
        self._backoff_initial = backoff_initial_seconds
        self._backoff_max = backoff_max_seconds
        self._timeout = timeout_seconds
        self._stop = threading.Event()
        self.done = threading.Event()
        self.succeeded = False
        self.attempts = 0
        self._thread = threading.Thread(target=self._run, name="registration", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        else:
            logger.warning(
                "PREDICTOR_MONITOR_TOKEN is unset: the monitor will refuse registration and records"
            )
        return headers

    def _run(self) -> None:
        try:
            body = self._payload()
        except Exception:
            logger.exception("could not build the registration payload; not registering")
            self._finish(False)
            return
        headers = self._headers()
        backoff = self._backoff_initial
        with httpx.Client(timeout=self._timeout) as client:
            while not self._stop.is_set():
                self.attempts += 1
                try:
                    resp = client.post(self.url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    logger.warning("registration attempt %d: %s", self.attempts, type(exc).__name__)
                else:
                    if resp.status_code in (200, 201):
                        logger.info(
                            "model version registered with the monitor (%d)", resp.status_code
                        )
                        self._finish(True)
                        return
                    if 400 <= resp.status_code < 500 and resp.status_code not in RETRYABLE_4XX:
                        logger.error(
                            "monitor refused the registration (HTTP %d): %s; not retrying",
                            resp.status_code,
                            resp.text[:500],
                        )
                        self._finish(False)
                        return
                    logger.warning(
                        "registration attempt %d: HTTP %d", self.attempts, resp.status_code
                    )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)
        self._finish(False)

    def _finish(self, ok: bool) -> None:
        self.succeeded = ok
        try:
            self._on_result(ok)
        finally:
            self.done.set()
