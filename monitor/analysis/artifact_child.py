"""What runs in the process that first loads an uploaded booster (`artifact.vet` forks it).

Why a module of its own: the parent side (`artifact.py`) only starts, waits for and kills the
child; this is the code that sets the limits and touches the untrusted bytes, and it is what
the warm process (`artifact_warm`) has imported, so a vetting pays no import.
"""

from __future__ import annotations

import math
import os
import resource
from multiprocessing.connection import Connection
from typing import Any


def main(answer: Connection, data: dict[str, Any]) -> None:
    """In the child: limits first, then the booster; the answer (a dict) goes to `answer`."""
    limit = int(data["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # the parent kills the child at the timeout; this stops it too if the parent is gone
    seconds = math.ceil(float(data["timeout_seconds"])) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    _first_to_go()
    try:
        result = check(data["artifact"], data["schema"], data["reference"], limit)
    except MemoryError:
        result = refuse(f"vetting the booster needs more than {limit} bytes of memory")
    answer.send({**result, "warm_pid": os.getppid(), "pid": os.getpid()})
    answer.close()


def check(
    raw: bytes, schema_data: dict[str, Any], reference: list[dict[str, Any]], limit: int
) -> dict[str, Any]:
    """Load `raw`, check it takes the schema's features and re-scores the reference rows."""
    from contract.schema import ModelSchema
    from monitor.analysis import holdout

    schema = ModelSchema.model_validate(schema_data)
    try:
        booster = holdout.booster_of(raw)
        booster.set_param({"nthread": 1})
    except MemoryError:
        return refuse(f"loading the booster needs more than {limit} bytes of memory")
    except Exception as exc:
        message = first_line(exc)
        if "bad_alloc" in message:
            return refuse(f"loading the booster needs more than {limit} bytes of memory")
        return refuse(f"not a loadable XGBoost booster ({message})")
    features = int(booster.num_features())
    if features != len(schema.feature_names):
        return refuse(
            f"the booster takes {features} features, the schema names {len(schema.feature_names)}",
            status=422,
        )
    try:
        off = holdout.disagreeing_rows(booster, schema, reference)
        metrics = holdout.holdout_metrics(booster, schema, reference)
    except MemoryError:
        return refuse(f"scoring the reference needs more than {limit} bytes of memory")
    except Exception as exc:
        return refuse(f"the booster cannot score the reference rows ({first_line(exc)})")
    if len(off) > holdout.MAX_DISAGREEING_SHARE * len(reference):
        return refuse(
            f"reference[{off[0]}].probability (and {len(off) - 1} more of {len(reference)} rows)"
            f" is not the booster's own score (beyond {holdout.SCORE_TOLERANCE:g})",
            loc="reference",
            status=422,
        )
    return {"holdout": metrics, "features": features}


def _first_to_go() -> None:
    """Make this child the OOM killer's first choice: several vet at once, each up to the
    limit, and if together they exhaust the pod's memory one of them must die, not the
    monitor. Raising one's own score needs no privilege; where /proc is missing, skip."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def refuse(message: str, loc: str = "artifact", status: int = 400) -> dict[str, Any]:
    return {"error": message, "loc": loc, "status": status}
