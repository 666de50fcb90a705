"""An uploaded booster is first loaded in a child process with a memory limit and a timeout.

Why: the artifact of a registration is untrusted input. XGBoost parses UBJSON in C++, and a
truncated or fuzzed file can make it segfault, or allocate tens of GB (one truncation asked
for 22.7 GB and drew the kernel's OOM killer onto the monitor). So `vet` never loads a new
artifact in the serving process: it runs `python -m monitor.analysis.artifact` with
`RLIMIT_AS` (`MONITOR_ARTIFACT_MEMORY_BYTES`) set in the child before XGBoost is imported,
no core dumps, one OpenMP thread, and kills it after `MONITOR_ARTIFACT_TIMEOUT_SECONDS`.
The child loads the booster, checks it takes the schema's features, re-scores the reference
rows (their stated `probability` must be the booster's own score) and computes the hold-out
metrics (`monitor.analysis.holdout`); the monitor stores those, not the registration's.
A crash, a limit hit, a timeout or a refusal is an `ArtifactRefusedError` naming the problem
(the API answers 400/422); the monitor keeps running. One child at a time.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ONE_AT_A_TIME = threading.Lock()
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding `monitor/`


class ArtifactRefusedError(Exception):
    """The artifact (or the reference rows it was scored on) is unusable: `loc` names which."""

    def __init__(self, message: str, loc: str = "artifact", status: int = 400) -> None:
        super().__init__(message)
        self.loc, self.status = loc, status


@dataclass(frozen=True)
class Vetted:
    holdout: dict[str, float | None]  # the monitor's own metrics on the reference rows
    features: int


def vet(
    raw: bytes,
    schema: Mapping[str, Any],
    reference: Sequence[Mapping[str, Any]],
    *,
    memory_bytes: int,
    timeout_seconds: float,
) -> Vetted:
    """Load and score `raw` in an isolated child; raises `ArtifactRefusedError`."""
    payload = json.dumps(
        {
            "artifact": base64.b64encode(raw).decode("ascii"),
            "schema": schema,
            "reference": list(reference),
            "memory_bytes": memory_bytes,
        }
    ).encode()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    with _ONE_AT_A_TIME:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "monitor.analysis.artifact"],
                input=payload,
                capture_output=True,
                timeout=timeout_seconds,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ArtifactRefusedError(
                f"loading and scoring the booster took longer than {timeout_seconds:g} s"
            ) from None
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        raise ArtifactRefusedError(f"the booster crashed XGBoost while loading ({name})")
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise ArtifactRefusedError(
            f"loading the booster failed (exit {done.returncode}: {last[0][:200]})"
        ) from None
    if "error" in answer:
        raise ArtifactRefusedError(answer["error"], answer.get("loc", "artifact"), answer["status"])
    return Vetted(holdout=answer["holdout"], features=int(answer["features"]))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _child() -> dict[str, Any]:
    """In the child: limits first, then XGBoost."""
    data = json.loads(sys.stdin.buffer.read())
    limit = int(data["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    raw = base64.b64decode(data.pop("artifact"))

    from contract.schema import ModelSchema
    from monitor.analysis import holdout

    schema = ModelSchema.model_validate(data["schema"])
    try:
        booster = holdout.booster_of(raw)
    except MemoryError:
        return _refuse(f"loading the booster needs more than {limit} bytes of memory")
    except Exception as exc:
        message = _first_line(exc)
        if "bad_alloc" in message:
            return _refuse(f"loading the booster needs more than {limit} bytes of memory")
        return _refuse(f"not a loadable XGBoost booster ({message})")
    features = int(booster.num_features())
    if features != len(schema.feature_names):
        return _refuse(
            f"the booster takes {features} features, the schema names {len(schema.feature_names)}",
            status=422,
        )
    reference = data["reference"]
    try:
        off = holdout.disagreeing_rows(booster, schema, reference)
        metrics = holdout.holdout_metrics(booster, schema, reference)
    except MemoryError:
        return _refuse(f"scoring the reference needs more than {limit} bytes of memory")
    except Exception as exc:
        return _refuse(f"the booster cannot score the reference rows ({_first_line(exc)})")
    if len(off) > holdout.MAX_DISAGREEING_SHARE * len(reference):
        return _refuse(
            f"reference[{off[0]}].probability (and {len(off) - 1} more of {len(reference)} rows)"
            f" is not the booster's own score (beyond {holdout.SCORE_TOLERANCE:g})",
            loc="reference",
            status=422,
        )
    return {"holdout": metrics, "features": features}


def _refuse(message: str, loc: str = "artifact", status: int = 400) -> dict[str, Any]:
    return {"error": message, "loc": loc, "status": status}


if __name__ == "__main__":
    sys.stdout.write(json.dumps(_child()))
