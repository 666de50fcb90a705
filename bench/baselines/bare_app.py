"""The bare baseline: Starlette + uvicorn doing the same scoring work as the services.

Run with `python bare_app.py --port P --workers N` from `bench/baselines` (the bench does).
Not `uvicorn --workers N`: uvicorn (0.54) binds that shared socket as
`socket.socket(family=...)`, whose `proto` is 0, and asyncio only sets TCP_NODELAY on
sockets whose proto is IPPROTO_TCP. Without it every response (headers and body are two
writes) waits for the client's delayed ACK: measured 44 ms per request at any
concurrency, vs 0.8 ms with one worker. `main()` binds its sockets with IPPROTO_TCP.
With N workers it starts N processes with one SO_REUSEPORT socket each, as the shipped
predictor does: uvicorn's supervisor shares one socket, and under keep-alive load one worker
accepted all 32 connections (docs/performance.md, "Workers that are workers");
`--shared-socket` keeps that layout for comparison.
It parses and validates the body with the same pydantic record model (in pydantic-core,
straight from the bytes), scores with `scoring.predict` and answers the contract's shape.
Bad input gets a 400 with pydantic's field errors, as in the real service.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
from typing import Any

import serve_scoring as scoring
import uvicorn
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODEL = scoring.load()
Record: Any = MODEL.schema.record_model()
Body: type[BaseModel] = create_model(
    "Body", __config__=ConfigDict(extra="forbid"), records=(list[Record], ...)
)


async def predict(request: Request) -> Response:
    raw = await request.body()
    try:
        body = Body.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        return JSONResponse({"detail": errors}, status_code=400)
    rows = [r.model_dump() for r in body.records]  # type: ignore[attr-defined]
    return Response(json.dumps(scoring.predict(MODEL, rows)), media_type="application/json")


async def livez(_: Request) -> Response:
    return Response("ok")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/livez", livez)])


def _socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def main() -> None:
    ap = argparse.ArgumentParser(description="bare Starlette baseline")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--shared-socket",
        action="store_true",
        help="uvicorn's supervisor over one shared socket (one worker may take every"
        " keep-alive connection) instead of one SO_REUSEPORT socket per worker",
    )
    ap.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    config = uvicorn.Config(
        "bare_app:app", workers=args.workers, access_log=False, log_level="warning"
    )
    if args.workers > 1 and not args.shared_socket:
        _serve_reuseport(args.host, args.port, args.workers)
        return
    sock = _socket(args.host, args.port, args.reuse_port)
    if args.workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


def _serve_reuseport(host: str, port: int, workers: int) -> None:
    """N single-worker processes, each with its own SO_REUSEPORT socket on the same port
    (what the shipped predictor does, bentos/reuseport.py); stops them on SIGTERM/SIGINT."""
    argv = [sys.executable, __file__, "--host", host, "--port", str(port), "--workers", "1"]
    children = [subprocess.Popen([*argv, "--reuse-port"]) for _ in range(workers)]

    def stop(signum: int, _frame: Any) -> None:
        for child in children:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.wait()


if __name__ == "__main__":
    main()
