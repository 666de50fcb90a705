"""The fitted calculators of every version, kept for the life of the process.

Fitting is the expensive part of the analysis (about a second per version: NannyML CBPE,
drift references, the booster, intervals); applying the fits is linear in rows. So each
(model, version, chunk size) is fitted once, from the store's registration, and a new fit
starts calibrated on the errors the version's stored labelled chunks already showed.
"""

from __future__ import annotations

import base64
import threading

from contract.registration import Registration
from monitor.analysis.chunks import FittedVersion
from monitor.analysis.intervals import CALIBRATION_LABELLED_SHARE, DEFAULT_LEVEL, residual_of
from monitor.analysis.plan import Sizing
from monitor.analysis.ports import AnalysisStore
from monitor.core.evidence import ChunkEvidence
from monitor.core.settings import MonitorSettings


class VersionCache:
    """(model, version) -> FittedVersion, fitted lazily from the store's registration."""

    def __init__(
        self, store: AnalysisStore, chunk_size: int = 500, interval_level: float = DEFAULT_LEVEL
    ) -> None:
        self._store = store
        self._chunk_size = chunk_size
        self._level = interval_level
        self._fitted: dict[tuple[str, str, int], FittedVersion] = {}
        self._sizing: dict[tuple[str, str, float], Sizing] = {}
        self._lock = threading.Lock()
        self.fits = 0  # how many versions were fitted (a fit per version, not per cycle)

    @classmethod
    def of(cls, store: AnalysisStore, settings: MonitorSettings) -> VersionCache:
        """Fitted for `MONITOR_CHUNK_SIZE` rows at `MONITOR_ESTIMATE_INTERVAL_LEVEL`."""
        return cls(store, settings.analysis.chunk_size, settings.analysis.estimate_interval_level)

    def get(self, model: str, version: str, chunk_size: int | None = None) -> FittedVersion:
        size = chunk_size or self._chunk_size
        key = (model, version, size)
        with self._lock:
            fitted = self._fitted.get(key)
            if fitted is None:
                fitted = FittedVersion.fit(self._registration(model, version), size, self._level)
                self._remember_errors(fitted, self._store.chunks(model, version))
                self._fitted[key] = fitted
                self.fits += 1
            return fitted

    @staticmethod
    def _remember_errors(fitted: FittedVersion, stored: list[ChunkEvidence]) -> None:
        """Seed the intervals with the version's stored labelled chunks, so a restarted
        monitor calibrates on the errors it had already seen instead of starting over."""
        for chunk in stored:
            if not chunk.rows or chunk.labelled_rows < CALIBRATION_LABELLED_SHARE * chunk.rows:
                continue
            for metric, est in chunk.estimated.items():
                residual = residual_of(est, chunk.realized.get(metric))
                if residual is not None:
                    fitted.intervals.observe(chunk.first_seq, metric, residual)

    def sizing(self, model: str, version: str, max_sampling_error: float) -> Sizing:
        """The reference's size and the smallest chunk within the sampling-error bound."""
        key = (model, version, max_sampling_error)
        with self._lock:
            found = self._sizing.get(key)
        if found is not None:
            return found
        found = Sizing.of_reference(self._registration(model, version), max_sampling_error)
        with self._lock:
            self._sizing[key] = found
        return found

    def forget(self, model: str, version: str) -> None:
        with self._lock:
            for key in [k for k in self._fitted if k[:2] == (model, version)]:
                del self._fitted[key]
            for skey in [k for k in self._sizing if k[:2] == (model, version)]:
                del self._sizing[skey]

    def _registration(self, model: str, version: str) -> Registration:
        data = self._store.registration(model, version)
        allowed = {f.alias or name for name, f in Registration.model_fields.items()}
        payload = {k: v for k, v in data.items() if k in allowed}
        payload["artifact"] = base64.b64encode(self._store.artifact(model, version)).decode()
        return Registration.model_validate(payload)
