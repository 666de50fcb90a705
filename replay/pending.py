"""What the monitor said about a chunk while its labels were still out, against the truth.

With labels days late (`make replay`'s `--label-delay-hours`), the figure a user reads for a
chunk is the one the monitor stored before the chunk's labels arrived. A poller keeps each
chunk's first stored analysis with fewer labelled rows than rows ("as issued"); once the
replay has posted every label, `compare` scores those estimates and their 90% intervals
against the realized ROC AUC of the final analysis (issue 23, item 4).
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import numpy as np

METRIC = "roc_auc"


class PendingPoller(threading.Thread):
    """Polls the monitor's chunks; keeps each chunk's first analysis with labels still out."""

    def __init__(self, url: str, period_seconds: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.period = period_seconds
        self.issued: dict[tuple[str, int], dict[str, Any]] = {}
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                chunks = httpx.get(self.url, timeout=30).json()
            except (httpx.HTTPError, ValueError):
                continue
            self.observe(chunks)

    def observe(self, chunks: list[dict[str, Any]]) -> None:
        for c in chunks:
            key = (str(c["version"]), int(c["chunk_index"]))
            est = (c.get("estimated") or {}).get(METRIC) or {}
            if key in self.issued or est.get("value") is None:
                continue
            if int(c["labelled_rows"]) < int(c["rows"]):
                self.issued[key] = c

    def stop(self) -> None:
        self._stop.set()


def compare(
    issued: dict[tuple[str, int], dict[str, Any]],
    final: list[dict[str, Any]],
    reference_auc: dict[str, float],
) -> dict[str, Any]:
    """Per chunk: the estimate and interval as issued, the labelled share then, the realized
    value once all labels are in; MAE, coverage and width over the chunks with both."""
    rows = []
    for c in final:
        key = (str(c["version"]), int(c["chunk_index"]))
        real = (c.get("realized") or {}).get(METRIC)
        if key not in issued or real is None:
            continue
        then = issued[key]
        est = then["estimated"][METRIC]
        lo, hi = est.get("interval_lower"), est.get("interval_upper")
        rows.append(
            {
                "version": key[0],
                "chunk_index": key[1],
                "labelled_share_when_issued": round(int(then["labelled_rows"]) / int(c["rows"]), 3),
                "estimated_when_issued": est["value"],
                "interval_when_issued": [lo, hi],
                "estimated_final": c["estimated"][METRIC]["value"],
                "realized": real,
                "reference": reference_auc.get(key[0]),
            }
        )
    return {"summary": _summary(rows), "chunks": rows}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for version in sorted({r["version"] for r in rows}):
        mine = [r for r in rows if r["version"] == version]
        real = np.array([r["realized"] for r in mine], dtype=float)
        est = np.array([r["estimated_when_issued"] for r in mine], dtype=float)
        ref = np.array([np.nan if r["reference"] is None else r["reference"] for r in mine])
        with_iv = [r for r in mine if None not in r["interval_when_issued"]]
        iv = [r["interval_when_issued"] for r in with_iv]
        inside = [lo <= r["realized"] <= hi for r, (lo, hi) in zip(with_iv, iv, strict=True)]
        out[version] = {
            "chunks": len(mine),
            "mean_labelled_share_when_issued": round(
                float(np.mean([r["labelled_share_when_issued"] for r in mine])), 3
            ),
            "estimate_mae": round(float(np.mean(np.abs(est - real))), 4),
            "reference_mae": round(float(np.nanmean(np.abs(ref - real))), 4),
            "interval_chunks": len(iv),
            "interval_coverage": round(float(np.mean(inside)), 3) if iv else None,
            "interval_mean_width": round(float(np.mean([hi - lo for lo, hi in iv])), 3)
            if iv
            else None,
        }
    return out


__all__ = ["PendingPoller", "compare"]
