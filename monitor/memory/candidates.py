"""Candidates: versions registered but not serving, judged on the rows the baseline serves.

Why a module of its own (beside `state.py`): a candidate is neither operator memory nor
chunk evidence of a serving version. Who declared it (the API/CLI or a ModelMonitor's
`spec.candidates`), its per-chunk same-rows evidence (written by the analysis cycle) and its
last verdict (written by the operator, read by the API and the CLI) live under their own keys,
formatted only here. Plain data and JSON, no I/O beyond the `StateStore` given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from monitor.core.gap import ChunkGap
from monitor.memory.state import StateStore

SOURCES = ("api", "spec")
DEFAULT_BACKFILL_CHUNKS = 4


@dataclass(frozen=True)
class CandidateEntry:
    """A declared candidate: by whom (`sources`), since when."""

    version: str
    sources: tuple[str, ...]
    added_at: str
    added_by: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "sources": list(self.sources),
            "added_at": self.added_at,
            "added_by": self.added_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CandidateEntry:
        return cls(
            str(data["version"]),
            tuple(str(s) for s in data.get("sources", ())),
            str(data.get("added_at", "")),
            str(data.get("added_by", "")),
        )


@dataclass(frozen=True)
class CandidateChunk:
    """One baseline chunk scored by a candidate: both versions' estimates on the same rows.

    `baseline_*` are the serving (baseline) version's figures for the chunk, `candidate_*`
    the candidate's on the very same logged inputs; realized figures once labels arrived.
    `missing_features`: features the candidate needs that the logged inputs lack;
    `unseen_categories`: feature -> categories the candidate's reference holds that these
    rows never showed.
    """

    chunk_index: int
    baseline_version: str
    rows: int
    first_seq: int
    last_seq: int
    candidate_estimate: float | None
    candidate_sampling_error: float | None
    baseline_estimate: float | None
    baseline_sampling_error: float | None
    rank_correlation: float | None
    labelled_rows: int = 0
    candidate_realized: float | None = None
    baseline_realized: float | None = None
    missing_features: tuple[str, ...] = ()
    unseen_categories: dict[str, list[str]] = field(default_factory=dict)
    start_time: str = ""
    end_time: str = ""
    analysed_at: str = ""

    @property
    def estimated_gap(self) -> float | None:
        if self.candidate_estimate is None or self.baseline_estimate is None:
            return None
        return self.candidate_estimate - self.baseline_estimate

    @property
    def realized_gap(self) -> float | None:
        """On the chunk's labelled rows, however few: which chunks count is the gap's
        filter (`monitor.core.gap.GapFilter`)."""
        if self.candidate_realized is None or self.baseline_realized is None:
            return None
        return self.candidate_realized - self.baseline_realized

    def gap(self, same_learner: bool) -> ChunkGap:
        """The chunk's same-rows figures for `monitor.core.gap` (candidate - baseline)."""
        return ChunkGap(
            self.chunk_index,
            self.rows,
            self.labelled_rows,
            self.baseline_version,
            same_learner,
            self.estimated_gap,
            self.realized_gap,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["missing_features"] = list(self.missing_features)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CandidateChunk:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["missing_features"] = tuple(known.get("missing_features", ()))
        known["unseen_categories"] = {
            str(k): [str(c) for c in v] for k, v in dict(known.get("unseen_categories", {})).items()
        }
        return cls(**known)


class CandidateState:
    """Typed reads and writes of candidates over a `StateStore` (keys formatted only here)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    @staticmethod
    def _set_key(model: str) -> str:
        return f"candidates/{model}"

    @staticmethod
    def _chunks_key(model: str, version: str) -> str:
        return f"candidate_chunks/{model}/{version}"

    @staticmethod
    def _verdicts_key(model: str) -> str:
        return f"candidate_verdicts/{model}"

    # -- the declared set -------------------------------------------------------------------

    def entries(self, model: str) -> dict[str, CandidateEntry]:
        data = self._store.get_state(self._set_key(model)) or {}
        return {
            str(v): CandidateEntry.from_json(e) for v, e in dict(data.get("entries", {})).items()
        }

    def backfill_chunks(self, model: str) -> int:
        """How many of the baseline's stored chunks a new candidate is scored on at once."""
        data = self._store.get_state(self._set_key(model)) or {}
        return int(data.get("backfill_chunks", DEFAULT_BACKFILL_CHUNKS))

    def add(self, model: str, version: str, source: str, at: str, by: str = "") -> bool:
        """Declare `version` a candidate from `source`; False when it already was from it."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        added = False

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            nonlocal added
            doc = dict(old or {})
            entries = dict(doc.get("entries", {}))
            entry = CandidateEntry.from_json(entries[version]) if version in entries else None
            if entry is None:
                entry = CandidateEntry(version, (source,), at, by)
                added = True
            elif source not in entry.sources:
                entry = CandidateEntry(version, (*entry.sources, source), entry.added_at, by)
                added = True
            entries[version] = entry.to_json()
            doc["entries"] = entries
            return doc

        self._store.update_state(self._set_key(model), change)
        return added

    def remove(self, model: str, version: str, source: str) -> tuple[bool, tuple[str, ...]]:
        """Withdraw `source`'s declaration; (removed, sources still declaring it)."""
        removed = False
        left: tuple[str, ...] = ()

        def change(old: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal removed, left
            if old is None:
                return None
            doc = dict(old)
            entries = dict(doc.get("entries", {}))
            if version not in entries:
                return doc
            entry = CandidateEntry.from_json(entries[version])
            left = tuple(s for s in entry.sources if s != source)
            removed = left != entry.sources
            if left:
                entries[version] = CandidateEntry(
                    version, left, entry.added_at, entry.added_by
                ).to_json()
            else:
                entries.pop(version)
            doc["entries"] = entries
            return doc

        self._store.update_state(self._set_key(model), change)
        if removed and not left:
            self._store.put_state(self._chunks_key(model, version), {})
        return removed, left

    def sync_spec(self, model: str, versions: Sequence[str], backfill: int, at: str) -> bool:
        """Make the `spec` declarations exactly `versions` and store the backfill; True when
        anything changed."""
        changed = False

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            nonlocal changed
            doc = dict(old or {})
            entries = {v: CandidateEntry.from_json(e) for v, e in doc.get("entries", {}).items()}
            wanted = set(versions)
            out: dict[str, Any] = {}
            for version, entry in entries.items():
                sources = tuple(s for s in entry.sources if s != "spec" or version in wanted)
                if version in wanted and "spec" not in sources:
                    sources = (*sources, "spec")
                if sources != entry.sources:
                    changed = True
                if sources:
                    out[version] = CandidateEntry(
                        version, sources, entry.added_at, entry.added_by
                    ).to_json()
            for version in versions:
                if version not in out:
                    out[version] = CandidateEntry(version, ("spec",), at, "spec").to_json()
                    changed = True
            if doc.get("backfill_chunks") != backfill:
                changed = True
            doc["entries"] = out
            doc["backfill_chunks"] = backfill
            return doc

        if not versions and not self._store.get_state(self._set_key(model)):
            return False
        self._store.update_state(self._set_key(model), change)
        return changed

    # -- per-chunk evidence (written by the analysis) ---------------------------------------

    def chunks(self, model: str, version: str) -> list[CandidateChunk]:
        data = self._store.get_state(self._chunks_key(model, version)) or {}
        found = [CandidateChunk.from_json(c) for c in data.get("chunks", [])]
        return sorted(found, key=lambda c: (c.baseline_version, c.chunk_index))

    def save_chunks(self, model: str, version: str, fresh: Sequence[CandidateChunk]) -> None:
        """Upsert by (baseline version, chunk index)."""
        if not fresh:
            return

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            kept = {
                (str(c.get("baseline_version")), int(c.get("chunk_index", -1))): c
                for c in (old or {}).get("chunks", [])
            }
            for chunk in fresh:
                kept[(chunk.baseline_version, chunk.chunk_index)] = chunk.to_json()
            return {"chunks": [kept[k] for k in sorted(kept)]}

        self._store.update_state(self._chunks_key(model, version), change)

    # -- verdicts (written by the operator) -------------------------------------------------

    def verdicts(self, model: str) -> dict[str, dict[str, Any]]:
        data = self._store.get_state(self._verdicts_key(model)) or {}
        return {str(k): dict(v) for k, v in dict(data.get("verdicts", {})).items()}

    def set_verdicts(self, model: str, verdicts: Mapping[str, Mapping[str, Any]]) -> bool:
        """Store the verdicts (JSON); False (and nothing written) when unchanged."""
        doc = {"verdicts": {k: dict(v) for k, v in verdicts.items()}}
        if (self._store.get_state(self._verdicts_key(model)) or {}) == doc:
            return False
        self._store.put_state(self._verdicts_key(model), doc)
        return True
