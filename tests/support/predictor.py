"""Start a real `bentoml serve` predictor on a free loopback port; a minimal records receiver.

`running_predictor` is what integration tests and the logging benchmark use: it starts the
shipped service (`bentos.service:Predictor`) through `replay.launcher` with the given
environment, waits for `/readyz` (or `/livez` when the test expects "not ready"), and always
stops it (SIGTERM to the server, then SIGKILL of what is left of its process group).

`RecordReceiver` is a protocol peer of the monitor's ingest API (docs/contracts.md section 3:
`POST /v1/records` -> 202, `POST /v1/models` -> 201), written for the predictor's delivery
tests so they do not depend on the monitor's implementation. It can be taken down and brought
back on the same port to simulate an outage. It counts distinct `prediction_id`s, exactly as
the monitor dedups them.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from replay import launcher
from replay.launcher import Process, free_port

__all__ = ["Received", "RecordReceiver", "free_port", "running_predictor"]


@contextlib.contextmanager
def running_predictor(
    env: dict[str, str],
    log_path: Path,
    wait_ready: bool = True,
    timeout: float = 90.0,
) -> Iterator[Process]:
    """A real predictor; `env` adds PREDICTOR_* (and BENTOML_HOME) to the current environment."""
    proc = launcher.predictor(log_path, env=env, service="bentos.service:Predictor")
    try:
        yield proc.start(timeout, ready_path="/readyz" if wait_ready else "/livez")
    finally:
        proc.terminate(timeout=20)


@dataclass
class Received:
    ids: set[str] = field(default_factory=set)
    posts: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    records_auth: set[str] = field(default_factory=set)  # Authorization of records POSTs
    lock: threading.Lock = field(default_factory=threading.Lock)


class RecordReceiver:
    """A stand-in for the monitor's ingest endpoints on 127.0.0.1; `down()`/`up()` an outage."""

    def __init__(
        self,
        keep_records: bool = True,
        registration_status: int = 201,
        records_status: list[int] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.got = Received()
        self.keep_records = keep_records
        self.registration_status = registration_status
        # answers to the first records POSTs (e.g. 425: version not registered yet), then 202
        self.records_status = list(records_status or [])
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RecordReceiver:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                payload = json.loads(body)
                got = receiver.got
                if self.path == "/v1/records":
                    with got.lock:
                        got.posts += 1
                        got.records_auth.add(self.headers.get("Authorization", ""))
                        early = receiver.records_status.pop(0) if receiver.records_status else 0
                    if early:
                        self._reply(early, {"error": "refused for the test", "errors": []})
                        return
                    with got.lock:
                        got.batch_sizes.append(len(payload["records"]))
                        for rec in payload["records"]:
                            if rec["prediction_id"] not in got.ids:
                                got.ids.add(rec["prediction_id"])
                                if receiver.keep_records:
                                    got.records.append(rec)
                    self._reply(202, {"accepted": len(payload["records"])})
                elif self.path == "/v1/models":
                    with got.lock:
                        got.registrations.append(payload)
                        got.auth_headers.append(self.headers.get("Authorization", ""))
                    self._reply(receiver.registration_status, {})
                else:
                    self._reply(404, {"detail": "no such path"})

            def _reply(self, status: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def count(self) -> int:
        with self.got.lock:
            return len(self.got.ids)

    def wait_for(self, n: int, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.count() < n:
            time.sleep(0.1)
        return self.count()
