"""Candidate series: each declared candidate's verdict and same-rows gaps, by model and version.

Why a class of its own on the monitor's registry: candidates come and go by declaration, so
the series of a withdrawn candidate must disappear with it (bounded cardinality: a model
has a few candidates, at most eight in a spec), which `publish` does per model.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Gauge

from monitor.decision.candidates import VERDICTS, CandidateVerdict

MV = ("model", "version")


class CandidateMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str, labels: tuple[str, ...] = MV) -> Gauge:
            return Gauge(name, doc, list(labels), registry=registry)

        self.verdict = gauge(
            "modelguard_candidate_verdict",
            "1 for the candidate's current verdict, 0 for the others",
            (*MV, "verdict"),
        )
        self.estimated_gap = gauge(
            "modelguard_candidate_estimated_gap",
            "Candidate - baseline estimated ROC AUC on the baseline's rows (row-weighted)",
        )
        self.estimated_gap_lower = gauge(
            "modelguard_candidate_estimated_gap_lower", "Lower end of the estimated gap's band"
        )
        self.estimated_gap_upper = gauge(
            "modelguard_candidate_estimated_gap_upper", "Upper end of the estimated gap's band"
        )
        self.realized_gap = gauge(
            "modelguard_candidate_realized_gap",
            "Candidate - baseline realized ROC AUC on the same labelled rows",
        )
        self.rows = gauge("modelguard_candidate_rows", "Baseline rows the candidate was scored on")
        self.chunks = gauge(
            "modelguard_candidate_chunks", "Baseline chunks the candidate was scored on"
        )
        self._lock = threading.Lock()
        self._versions: dict[str, set[str]] = {}  # model -> candidate versions exported

    def publish(self, model: str, verdicts: Sequence[CandidateVerdict]) -> None:
        """Export `model`'s candidates exactly: withdrawn ones lose their series."""
        with self._lock:
            now = {v.version for v in verdicts}
            for gone in self._versions.get(model, set()) - now:
                self._remove(model, gone)
            self._versions[model] = now
            for v in verdicts:
                for name in VERDICTS:
                    self.verdict.labels(model, v.version, name).set(1 if v.verdict == name else 0)
                for gauge, value in (
                    (self.estimated_gap, v.estimated.gap),
                    (self.estimated_gap_lower, v.estimated.lower),
                    (self.estimated_gap_upper, v.estimated.upper),
                    (self.realized_gap, v.realized.gap),
                ):
                    if value is None:
                        _discard(gauge, model, v.version)
                    else:
                        gauge.labels(model, v.version).set(value)
                self.rows.labels(model, v.version).set(v.rows)
                self.chunks.labels(model, v.version).set(v.chunks)

    def forget(self, model: str, version: str) -> int:
        """Remove one candidate version's series (its version is gone); 1 if it had any."""
        with self._lock:
            if version not in self._versions.get(model, set()):
                return 0
            self._versions[model].discard(version)
            self._remove(model, version)
            return 1

    def _remove(self, model: str, version: str) -> None:
        for name in VERDICTS:
            _discard(self.verdict, model, version, name)
        for gauge in (
            self.estimated_gap,
            self.estimated_gap_lower,
            self.estimated_gap_upper,
            self.realized_gap,
            self.rows,
            self.chunks,
        ):
            _discard(gauge, model, version)


def _discard(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)
