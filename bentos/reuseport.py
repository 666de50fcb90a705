"""One listening socket per BentoML worker (SO_REUSEPORT), so N workers are N busy cores.

Measured (docs/performance.md, "Workers that are workers"): `bentoml serve` binds one
socket in its arbiter and every worker accepts from it. Under keep-alive load the worker
that wakes first accepts the whole burst of connections and keeps them: with
`PREDICTOR_WORKERS=2` and `wrk -c32`, 32 connections in one worker, 0 in the other, one core
busy. With a socket per worker bound with SO_REUSEPORT the kernel spreads new connections
over the workers' sockets by a hash of the client address and port.

circus (BentoML's process manager) already knows how: a socket with `so_reuseport` is not
bound in the arbiter, and each process gets its own bound copy, but only when the socket's
name appears in the watcher's `cmd`; BentoML passes it in `args`. The two patches below
mark BentoML's API socket for reuse and let circus find the name in `args`. They run in
the `bentoml serve` process, which imports the service before it creates the arbiter; they
touch private circus/BentoML API (pinned `bentoml>=1.4.30,<1.5`), hence the checks.
"""

from __future__ import annotations

import functools
import logging
import socket
from typing import Any

logger = logging.getLogger("modelguard.predictor")

API_SOCKET = "_bento_api_server"  # _bentoml_impl.server.serving.API_SERVER_NAME
_INSTALLED: list[bool] = []  # non-empty once patched (the service may be imported twice)
_FAMILIES = {socket.AF_INET: "AF_INET", socket.AF_INET6: "AF_INET6"}


def mark_for_reuse(sock: Any) -> bool:
    """Turn BentoML's (not yet bound) API socket into a per-process SO_REUSEPORT socket."""
    if getattr(sock, "name", None) != API_SOCKET or getattr(sock, "is_unix", True):
        return False
    family = _FAMILIES.get(sock.family)
    if family is None or not hasattr(socket, "SO_REUSEPORT"):
        return False
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.so_reuseport = True
    # What circus's Process rebuilds each worker's socket from (CircusSocket.load_from_config).
    sock._cfg = {
        "name": sock.name,
        "host": sock.host,
        "port": sock.port,
        "family": family,
        "backlog": sock.backlog,
        "so_reuseport": True,
        "proto": "tcp",  # IPPROTO_TCP, so asyncio sets TCP_NODELAY on accepted connections
    }
    return True


def patch_reuseport() -> bool:
    """Install both patches (idempotent); False with a warning when circus looks different."""
    try:
        from circus import arbiter, process
    except ImportError:  # pragma: no cover - circus comes with BentoML
        return False
    init = arbiter.Arbiter.__init__
    get_fds = getattr(process.Process, "_get_sockets_fds", None)
    if get_fds is None or not hasattr(process, "CircusSocket"):
        logger.warning("unexpected circus version: one shared socket for all workers")
        return False
    if _INSTALLED:
        return True

    @functools.wraps(init)
    def arbiter_init(self: Any, watchers: Any, *args: Any, **kwargs: Any) -> None:
        for sock in kwargs.get("sockets") or []:
            if mark_for_reuse(sock):
                logger.info("one SO_REUSEPORT socket per worker on %s", sock.location)
        init(self, watchers, *args, **kwargs)

    @functools.wraps(get_fds)
    def sockets_fds(self: Any) -> Any:
        fds = get_fds(self)
        watcher = self.watcher
        if fds is None or watcher is None or watcher.sockets is None:
            return fds
        args = " ".join(self.args) if isinstance(self.args, list) else str(self.args or "")
        for name, sock in watcher.sockets.items():
            marker = f"circus.sockets.{name}"
            if sock.so_reuseport and marker in args and marker not in watcher.cmd:
                own = process.CircusSocket.load_from_config(sock._cfg)
                own.bind_and_listen()
                fds[name] = own.fileno()
                self._sockets.append(own)  # circus closes it in the arbiter after fork
        return fds

    arbiter.Arbiter.__init__ = arbiter_init
    process.Process._get_sockets_fds = sockets_fds
    _INSTALLED.append(True)
    return True
