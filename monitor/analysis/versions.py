"""The fitted calculators of the versions being analysed: in memory (bounded), in the store.

Fitting is the expensive part of the analysis (about a second per version: NannyML CBPE,
drift references, the booster, intervals, the reference's TreeSHAP reliance); applying the
fits is linear in rows. So each (model, version, chunk size) is fitted once, from the store's
registration, and saved in the store under a fingerprint of what the fit depends on
(fitstate.py): a restarted monitor, or another replica, loads it instead of refitting. In
memory at most `MONITOR_ANALYSIS_CACHE_VERSIONS` fits are kept, least recently used first
out: an evicted version is loaded again from the store when its next chunk comes.

A fit, fresh or loaded, starts calibrated on the errors the version's stored labelled chunks
already showed (the state is saved before any of them is remembered, so it depends only on
the registration).
"""

from __future__ import annotations

import base64
import logging
import threading
from collections import OrderedDict

from contract.registration import Registration
from monitor.analysis import fitstate
from monitor.analysis.chunks import FittedVersion
from monitor.analysis.intervals import CALIBRATION_LABELLED_SHARE, DEFAULT_LEVEL, residual_of
from monitor.analysis.plan import Sizing
from monitor.analysis.ports import AnalysisStore
from monitor.core.evidence import ChunkEvidence
from monitor.core.settings import MonitorSettings

log = logging.getLogger(__name__)

DEFAULT_CACHED_VERSIONS = 64


class VersionCache:
    """(model, version, chunk size) -> FittedVersion: from memory, else the store, else fitted."""

    def __init__(
        self,
        store: AnalysisStore,
        chunk_size: int = 500,
        interval_level: float = DEFAULT_LEVEL,
        max_versions: int = DEFAULT_CACHED_VERSIONS,
    ) -> None:
        self._store = store
        self._chunk_size = chunk_size
        self._level = interval_level
        self._max = max(1, max_versions)
        self._fitted: OrderedDict[tuple[str, str, int], FittedVersion] = OrderedDict()
        # Sizings are three numbers each: kept for every version, never evicted.
        self._sizing: dict[tuple[str, str, float], Sizing] = {}
        self._lock = threading.Lock()
        self.fits = 0  # versions fitted here (a fit per version and chunk size, not per cycle)
        self.loads = 0  # versions loaded from the store's saved fits instead
        self.evictions = 0

    @classmethod
    def of(cls, store: AnalysisStore, settings: MonitorSettings) -> VersionCache:
        """Fitted for `MONITOR_CHUNK_SIZE` rows at `MONITOR_ESTIMATE_INTERVAL_LEVEL`, at most
        `MONITOR_ANALYSIS_CACHE_VERSIONS` in memory."""
        analysis = settings.analysis
        return cls(
            store, analysis.chunk_size, analysis.estimate_interval_level, analysis.cache_versions
        )

    def get(self, model: str, version: str, chunk_size: int | None = None) -> FittedVersion:
        size = chunk_size or self._chunk_size
        key = (model, version, size)
        with self._lock:
            fitted = self._fitted.get(key)
            if fitted is not None:
                self._fitted.move_to_end(key)
                return fitted
            fitted = self._load_or_fit(model, version, size)
            self._remember_errors(fitted, self._store.chunks(model, version))
            self._fitted[key] = fitted
            while len(self._fitted) > self._max:
                self._fitted.popitem(last=False)
                self.evictions += 1
            return fitted

    def cached(self) -> list[tuple[str, str, int]]:
        """The keys in memory, least recently used first."""
        with self._lock:
            return list(self._fitted)

    def _load_or_fit(self, model: str, version: str, size: int) -> FittedVersion:
        digest = self._store.registration_digest(model, version)
        key = fitstate.fingerprint("fit", digest, chunk_size=size, level=self._level)
        saved = self._store.fitted_state(model, version, key)
        if saved is not None:
            loaded = fitstate.load(saved, FittedVersion)
            if loaded is not None and loaded.key == (model, version):
                self.loads += 1
                return loaded
        fitted = FittedVersion.fit(self._registration(model, version), size, self._level)
        self.fits += 1
        self._save(model, version, key, fitted)
        return fitted

    def _save(self, model: str, version: str, key: str, state: object) -> None:
        """Saved for the next process; a failed save costs a refit there, never this pass."""
        try:
            self._store.save_fitted_state(model, version, key, fitstate.dump(state))
        except Exception:
            log.exception("saving the fitted state of %s:%s failed", model, version)

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
        digest = self._store.registration_digest(model, version)
        saved_key = fitstate.fingerprint("sizing", digest, max_sampling_error=max_sampling_error)
        saved = self._store.fitted_state(model, version, saved_key)
        found = fitstate.load(saved, Sizing) if saved is not None else None
        if found is None:
            found = Sizing.of_reference(self._registration(model, version), max_sampling_error)
            self._save(model, version, saved_key, found)
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
