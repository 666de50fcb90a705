"""`bentos.reuseport`: BentoML's API socket becomes one SO_REUSEPORT socket per worker.

The end-to-end check (two workers both holding keep-alive connections) is in
tests/integration/test_predictor_http.py; here the circus objects themselves.
"""

from __future__ import annotations

import socket

from circus.sockets import CircusSocket

from bentos.reuseport import API_SOCKET, mark_for_reuse, patch_reuseport


def test_api_socket_is_marked_and_each_copy_binds_the_same_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = CircusSocket(name=API_SOCKET, host="127.0.0.1", port=port)
    assert mark_for_reuse(api)
    assert api.so_reuseport and api.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    # What circus does per worker: two listening copies on one port, no EADDRINUSE.
    copies = [CircusSocket.load_from_config(api._cfg) for _ in range(2)]
    try:
        for copy in copies:
            copy.bind_and_listen()
        assert {c.getsockname()[1] for c in copies} == {port}
        assert all(c.proto == socket.IPPROTO_TCP for c in copies)  # TCP_NODELAY gets set
    finally:
        for sock in (api, *copies):
            sock.close()


def test_other_sockets_are_left_alone() -> None:
    other = CircusSocket(name="runner", host="127.0.0.1", port=0)
    try:
        assert not mark_for_reuse(other)
        assert not other.so_reuseport
    finally:
        other.close()


def test_patch_is_idempotent() -> None:
    """The service module may be imported twice in one process: wrap circus only once."""
    from circus import arbiter

    assert patch_reuseport()
    first = arbiter.Arbiter.__init__
    assert patch_reuseport()
    assert arbiter.Arbiter.__init__ is first
    assert not hasattr(first.__wrapped__, "__wrapped__")  # wraps circus's own __init__
