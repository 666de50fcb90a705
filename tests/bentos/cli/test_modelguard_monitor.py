"""`modelguard status | chunks | decisions | audit | report | known-good set | clear-rejection`
without a monitor: bad arguments exit 2 naming the argument before anything is sent, and
which environment variable each command takes its token from.

The commands against a real monitor: tests/integration/test_modelguard_monitor_cli.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bentos.cli.app import app

runner = CliRunner()
ENV_NAMES = (
    "MODELGUARD_MONITOR_TOKEN",
    "MODELGUARD_MONITOR_READER_TOKEN",
    "MODELGUARD_MONITOR_OPERATOR_TOKEN",
)
WRITES: tuple[tuple[str, ...], ...] = (
    ("known-good", "set", "toy", "v1"),
    ("clear-rejection", "toy", "v1"),
)


def invoke(*args: object, env: dict[str, str] | None = None) -> tuple[int, str]:
    environment: dict[str, str | None] = dict.fromkeys(ENV_NAMES)
    environment.update(env or {})
    result = runner.invoke(app, [str(a) for a in args], env=environment)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("status", "--monitor", "ftp://x"), "--monitor 'ftp://x'"),
        (("status", "--monitor", "http://u:p@x"), "no credentials in the URL"),
        (("status", "--monitor", "http://x?a=1"), "no query or fragment"),
        (("status", "--model", "Bad Name", "--monitor", "http://x"), "--model 'Bad Name'"),
        (("chunks", "Bad", "--monitor", "http://x"), "MODEL 'Bad'"),
        (("chunks", "toy", "--version", "_v", "--monitor", "http://x"), "--version '_v'"),
        (("decisions", "--model", "-x", "--monitor", "http://x"), "--model '-x'"),
        (("audit", "--limit", "0", "--monitor", "http://x"), "--limit 0: at least 1"),
        (("audit", "--timeout", "0", "--monitor", "http://x"), "--timeout 0"),
        (("report", "Bad", "--monitor", "http://x"), "MODEL 'Bad'"),
        (("known-good", "set", "toy", "V!", "--monitor", "http://x"), "VERSION 'V!'"),
        (("clear-rejection", "T", "v1", "--monitor", "http://x"), "MODEL 'T'"),
    ],
)
def test_bad_arguments_exit_2_naming_them(args: tuple[str, ...], named: str) -> None:
    code, output = invoke(*args)
    assert code == 2, output
    assert named in output, output


def test_the_monitor_url_is_required() -> None:
    code, output = invoke("status")
    assert code == 2 and "--monitor" in output, output


def test_report_refuses_a_directory_as_output(tmp_path: Path) -> None:
    code, output = invoke("report", "toy", "-o", tmp_path, "--monitor", "http://127.0.0.1:9")
    assert code == 2 and "a directory" in output, output


class Recorder:
    """A loopback server answering every request 200 `[]` / `{}` and keeping its headers:
    which token a command sent."""

    def __init__(self) -> None:
        self.authorization: list[str | None] = []
        seen = self.authorization

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                seen.append(self.headers.get("Authorization"))
                body = b"[]" if self.command == "GET" else b'{"cleared": true}'
                if self.path == "/metrics":
                    body = b""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


TOKENS = {
    "MODELGUARD_MONITOR_READER_TOKEN": "reader-s3cret",
    "MODELGUARD_MONITOR_OPERATOR_TOKEN": "operator-s3cret",
    "MODELGUARD_MONITOR_TOKEN": "shared-s3cret",
}


def test_reads_send_the_reader_token_and_writes_the_operator_token(recorder: Recorder) -> None:
    for read in ("status", "decisions", "audit"):
        recorder.authorization.clear()
        code, output = invoke(read, "--monitor", recorder.url, env=TOKENS)
        assert code == 0, output
        sent = {a for a in recorder.authorization if a is not None}
        assert sent == {"Bearer reader-s3cret"}, (read, recorder.authorization)
        assert "s3cret" not in output
    for args in WRITES:
        recorder.authorization.clear()
        code, output = invoke(*args, "--monitor", recorder.url, env=TOKENS)
        assert code == 0, output
        assert recorder.authorization == ["Bearer operator-s3cret"], args
        assert "s3cret" not in output
    # Without the role's variable, the shared one; --token over both.
    shared = {"MODELGUARD_MONITOR_TOKEN": "shared-s3cret"}
    recorder.authorization.clear()
    assert invoke("clear-rejection", "toy", "v1", "--monitor", recorder.url, env=shared)[0] == 0
    assert invoke("audit", "--monitor", recorder.url, env=shared)[0] == 0
    code, _ = invoke("audit", "--monitor", recorder.url, "--token", "given-s3cret", env=TOKENS)
    assert code == 0
    assert recorder.authorization == [
        "Bearer shared-s3cret",
        "Bearer shared-s3cret",
        "Bearer given-s3cret",
    ]
