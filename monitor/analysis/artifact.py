"""An uploaded booster is first loaded in a child process with a memory limit and a timeout.

Why: the artifact of a registration is untrusted input. XGBoost parses UBJSON in C++, and a
truncated or fuzzed file can make it segfault, or allocate tens of GB (one truncation asked
for 22.7 GB and drew the kernel's OOM killer onto the monitor). So `vet` never loads a new
artifact in the serving process: each artifact gets a child of its own, which sets
`RLIMIT_AS` (`MONITOR_ARTIFACT_MEMORY_BYTES`) and no core dumps before it touches the bytes,
runs one OpenMP thread, and is killed after `MONITOR_ARTIFACT_TIMEOUT_SECONDS` (with a
CPU-time limit a second above it, should the monitor be gone)
(`artifact_child.py`: load, check it takes the schema's features, re-score the reference
rows -- their stated `probability` must be the booster's own score -- and compute the
hold-out metrics, `monitor.analysis.holdout`; the monitor stores those, not the
registration's). A crash, a limit hit, a timeout or a refusal is an `ArtifactRefusedError`
naming the problem (the API answers 400/422); the monitor keeps running.

Bulk registration (issue 24): the children are forked from a warm process, multiprocessing's
`forkserver` with XGBoost, pandas and scikit-learn imported once (`artifact_warm.py`), not
started as fresh interpreters that import them every time (~1.5 s each). A child still
shares nothing with the monitor and dies after one artifact; the warm process never loads
an artifact, and one that has died is started again by the next vetting. As many children
run at once as the monitor has CPUs, two at least (several registrations arriving together
are vetted in parallel, and one that hangs until its timeout holds only its own slot).

The children are forked by multiprocessing, which makes a child re-import the parent's main
module when that is a script file; the monitor runs as `python -m monitor` (its image does),
whose main module is not re-imported.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from monitor.analysis import artifact_child

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["monitor.analysis.artifact_warm"])
# two at least: one artifact that runs until its timeout must not hold up every other
_SLOTS = threading.BoundedSemaphore(max(2, len(os.sched_getaffinity(0))))


class ArtifactRefusedError(Exception):
    """The artifact (or the reference rows it was scored on) is unusable: `loc` names which."""

    def __init__(self, message: str, loc: str = "artifact", status: int = 400) -> None:
        super().__init__(message)
        self.loc, self.status = loc, status


@dataclass(frozen=True)
class Vetted:
    holdout: dict[str, float | None]  # the monitor's own metrics on the reference rows
    features: int
    warm_pid: (
        int  # the warm process the child was forked from (the same one, vetting after vetting)
    )


def vet(
    raw: bytes,
    schema: Mapping[str, Any],
    reference: Sequence[Mapping[str, Any]],
    *,
    memory_bytes: int,
    timeout_seconds: float,
) -> Vetted:
    """Load and score `raw` in an isolated child; raises `ArtifactRefusedError`."""
    data = {
        "artifact": bytes(raw),
        "schema": dict(schema),
        "reference": [dict(row) for row in reference],
        "memory_bytes": memory_bytes,
        "timeout_seconds": timeout_seconds,
    }
    with _SLOTS:
        answer, exitcode = _in_child(data, timeout_seconds)
    if answer is None:
        if exitcode is not None and exitcode < 0:
            name = signal.Signals(-exitcode).name
            raise ArtifactRefusedError(f"the booster crashed XGBoost while loading ({name})")
        raise ArtifactRefusedError(f"loading the booster failed (exit {exitcode}, no answer)")
    if "error" in answer:
        raise ArtifactRefusedError(answer["error"], answer.get("loc", "artifact"), answer["status"])
    return Vetted(
        holdout=answer["holdout"], features=int(answer["features"]), warm_pid=answer["warm_pid"]
    )


def _in_child(
    data: dict[str, Any], timeout_seconds: float
) -> tuple[dict[str, Any] | None, int | None]:
    """The child's answer (None when it died without one) and its exit code."""
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    child = _started(sender, data)
    try:
        sender.close()
        if not wait([receiver, child.sentinel], timeout_seconds):
            raise ArtifactRefusedError(
                f"loading and scoring the booster took longer than {timeout_seconds:g} s"
            )
        try:
            answer: dict[str, Any] | None = receiver.recv()
        except (EOFError, OSError):
            answer = None  # died without answering: a crash or a limit hit in C++
        child.join(timeout_seconds)
        return answer, child.exitcode
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        receiver.close()
        sender.close()


def _started(sender: Connection, data: dict[str, Any]) -> BaseProcess:
    """A started child; the warm process replaced when it has died since the last vetting.

    multiprocessing starts a new forkserver only when it has reaped the old one; one killed
    between that check and the connection (or reaped elsewhere) fails the start, so the
    handle on it is dropped and the start tried again (at most twice more)."""
    for attempt in range(3):
        try:
            return _start(sender, data)
        except (OSError, EOFError):
            if attempt == 2:
                raise
            _forget_warm_process()
    raise AssertionError("unreachable")


def _forget_warm_process() -> None:
    """Kill and forget multiprocessing's forkserver, so the next start launches a new one."""
    from multiprocessing import forkserver

    server = forkserver._forkserver
    with getattr(server, "_lock", threading.Lock()):
        pid = getattr(server, "_forkserver_pid", None)
        alive_fd = getattr(server, "_forkserver_alive_fd", None)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass  # already gone, or reaped elsewhere
        if alive_fd is not None:
            with contextlib.suppress(OSError):
                os.close(alive_fd)
        for name in ("_forkserver_pid", "_forkserver_alive_fd", "_forkserver_address"):
            setattr(server, name, None)


def _start(sender: Connection, data: dict[str, Any]) -> BaseProcess:
    child = _CONTEXT.Process(target=artifact_child.main, args=(sender, data), daemon=True)
    child.start()
    return child
