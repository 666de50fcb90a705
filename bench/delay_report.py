"""The label-delay benchmark's selection, out-of-sample verdicts and the docs' table.

Kept apart from bench/label_delay.py (which computes) so the rules that decide whether a
method earned its place are short and readable: a method *wins* on a held-out data set at
the 7-day delay when its MAE is below stock CBPE's and below both naive baselines'; it
*meets the target* when its MAE is at most 0.6x the better naive baseline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

DECIDING_DELAY = 7
TARGET_RATIO = 0.6
NAIVE = ("reference", "persistence")
REPLAY = Path(__file__).resolve().parent / "results" / "replay_label_delay.json"
REPLAY_COMMAND = (
    "python -m replay.cli replay --label-delay-hours 168 --step-seconds 0.5 "
    "--workdir var/replay_delay7 --out bench/results/replay_label_delay.json"
)


def select(runs: list[dict[str, Any]], candidates: list[str], data: str) -> str:
    """The candidate with the lowest mean MAE on `data`'s Jul-Sep chunks (delays pooled)."""
    sel = [r["mae"] for r in runs if r["data"] == data and r["period"] == "jul-sep"]
    means = {c: float(np.mean([m[c] for m in sel if m[c] is not None])) for c in candidates}
    return min(means, key=means.__getitem__)


def held_out(runs: list[dict[str, Any]], selected_on: str) -> list[dict[str, Any]]:
    """At the deciding delay: the selection data set's Oct-Dec, every other one's Jul-Dec."""
    return [
        r
        for r in runs
        if r["delay_days"] == DECIDING_DELAY
        and r["period"] == ("oct-dec" if r["data"] == selected_on else "all")
    ]


def verdict(runs: list[dict[str, Any]], method: str, selected_on: str) -> dict[str, Any]:
    """Does `method` win out of sample, and where; meets the 0.6x target where."""
    rows = []
    for r in held_out(runs, selected_on):
        m = r["mae"]
        naive = min(m[n] for n in NAIVE)
        rows.append(
            {
                "data": r["data"],
                "period": r["period"],
                "chunks": m["chunks"],
                "mae": m[method],
                "cbpe": m["cbpe"],
                **{n: m[n] for n in NAIVE},
                "ratio_to_better_naive": m[method] / naive,
                "wins": bool(m[method] < min(m["cbpe"], *(m[n] for n in NAIVE))),
                "meets_target": bool(m[method] <= TARGET_RATIO * naive),
            }
        )
    wins = sum(r["wins"] for r in rows)
    return {
        "method": method,
        "selected_on": f"{selected_on} jul-sep (delays pooled)",
        "held_out": rows,
        "wins_on": wins,
        "earns_its_place": wins >= 2,
    }


def block_bootstrap(diff: np.ndarray, reps: int = 2000, seed: int = 0) -> list[float]:
    """95% interval of the mean per-chunk difference, resampling blocks of consecutive chunks
    (~10% of them, at least 3) because neighbouring chunks share their weather or season."""
    n = len(diff)
    if n < 3:
        return [float("nan"), float("nan")]
    block = max(3, n // 10)
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(reps):
        starts = rng.integers(0, n - block + 1, size=n // block + 1)
        idx = np.concatenate([np.arange(s, s + block) for s in starts])[:n]
        means.append(float(diff[idx].mean()))
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def through_the_monitor(replay: Path, root: Path) -> dict[str, Any] | None:
    """The rain replay at a 7-day label delay through the real predictor and monitor (written
    by `make bench-estimates`' replay step): the stored estimates as issued vs realized."""
    if not replay.exists():
        return None
    issued = json.loads(replay.read_text())["as_issued"]
    same = sum(c["estimated_when_issued"] == c["estimated_final"] for c in issued["chunks"])
    return {
        "command": REPLAY_COMMAND,
        "results": str(replay.relative_to(root)),
        "summary": issued["summary"],
        "chunks_whose_stored_estimate_never_changed": same,
        "chunks": issued["chunks"],
    }


SHOWN = ["reference", "persistence", "cbpe", "refit(a=0.5,n=4000)", "pape", "pick(cbpe|refit,k=12)"]


def markdown(runs: list[dict[str, Any]], chosen: list[str], nowcast: str) -> str:
    """The docs' table: MAE per method, intervals of the primary pick and of CBPE."""
    names = list(dict.fromkeys([*SHOWN, *chosen, nowcast]))
    head = ["data", "delay", "period", "chunks", *names, "90% intervals: pick / cbpe"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        m, iv = run["mae"], run["intervals"]
        cells = [run["data"], f"{run['delay_days']} d", run["period"], str(m["chunks"])]
        cells += ["-" if m[n] is None else f"{m[n]:.3f}" for n in names]
        cells.append(
            " / ".join(
                f"{v['coverage']:.0%} x {v['mean_width']:.2f}" if v["coverage"] is not None else "-"
                for v in (iv[chosen[0]], iv["cbpe"])
            )
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["DECIDING_DELAY", "held_out", "markdown", "select", "verdict"]
