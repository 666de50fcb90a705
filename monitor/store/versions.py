"""Model-version registrations and the versions overview, a part of both stores.

Why a module of its own: registering a version (content-addressed, idempotent, refused with
`RegistrationConflictError` on changed content, with the monitor's own hold-out metrics
beside it) and listing versions with their lifecycle state are one cohesive job that the API,
the CLI and analysis share, separate from records (records.py) and chunk evidence
(evidence.py). The rows live in the `model_versions` table.
"""

from __future__ import annotations

import base64
import hashlib
import json
import weakref
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ValidationError

from contract.registration import Registration
from monitor.core.times import now_iso
from monitor.memory.state import OperatorState
from monitor.store.backend import Connection, Database, Reader
from monitor.store.memory import canonical_json
from monitor.store.types import (
    RegistrationConflictError,
    UnknownVersionError,
    VersionInfo,
    registration_dict,
)


class ModelVersions:
    """Mixed into both stores; its methods run on a `Database` (the connections and state)."""

    # -- model versions --------------------------------------------------------------------

    def register(
        self: Database,
        reg: Registration | Mapping[str, Any],
        *,
        holdout: dict[str, Any] | None = None,
    ) -> Literal["created", "unchanged"]:
        """Store a registration (dict or `Registration`); `RegistrationConflictError` if changed.

        `holdout`: the hold-out metrics the monitor computed itself from the artifact and
        the reference rows (monitor/analysis/artifact.py), kept as `monitor_holdout` beside
        the registration's own `metrics` (which nothing decides on). Not part of the content
        digest: the same registration again is still `unchanged`."""
        data = registration_dict(reg)
        model, version = str(data["model"]), str(data["version"])
        digest = hashlib.sha256(canonical_json(data).encode()).hexdigest()

        artifact = base64.b64decode(data["artifact"])
        reference = canonical_json(data.get("reference", []))
        meta = {k: v for k, v in data.items() if k not in ("artifact", "reference")}
        meta["artifact_sha256"] = hashlib.sha256(artifact).hexdigest()
        if holdout is not None:
            meta["monitor_holdout"] = holdout

        def work(conn: Connection) -> Literal["created", "unchanged"]:
            row = conn.execute(
                "SELECT content_sha256, registration, reference, artifact FROM model_versions"
                " WHERE model = ? AND version = ?",
                (model, version),
            ).fetchone()
            if row is not None:
                if row[0] == digest or _same_content(data, row[1], row[2], row[3]):
                    return "unchanged"
                raise RegistrationConflictError(
                    f"{model}:{version} is registered with different content"
                )
            conn.execute(
                "INSERT INTO model_versions (model, version, registration, reference, artifact,"
                " content_sha256, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (model, version, canonical_json(meta), reference, artifact, digest, now_iso()),
            )
            return "created"

        return self._write(work)

    def registration(
        self: Database, model: str, version: str, *, with_reference: bool = True
    ) -> dict[str, Any]:
        """The registration as sent, without the artifact (see `artifact`)."""
        reader = self._reader()
        head = _heads(self, reader, model, version).get((model, version))
        if head is None:
            raise UnknownVersionError(f"{model}:{version} is not registered")
        data: dict[str, Any] = json.loads(head[0])
        data["registered_at"] = head[1]
        if with_reference:
            row = reader.execute(
                "SELECT reference FROM model_versions WHERE model = ? AND version = ?",
                (model, version),
            ).fetchone()
            data["reference"] = json.loads(row[0])
        return data

    def artifact(self: Database, model: str, version: str) -> bytes:
        row = (
            self._reader()
            .execute(
                "SELECT artifact FROM model_versions WHERE model = ? AND version = ?",
                (model, version),
            )
            .fetchone()
        )
        if row is None:
            raise UnknownVersionError(f"{model}:{version} is not registered")
        return bytes(row[0])

    def registered_pairs(self: Database) -> set[tuple[str, str]]:
        """Every registered (model, version): what records may be stored for."""
        rows = self._reader().execute("SELECT model, version FROM model_versions").fetchall()
        return {(str(m), str(v)) for m, v in rows}

    def models(self: Database) -> list[str]:
        """Every model registered or with records. The records' models are read by a loose
        index scan (one index seek per model on `records_by_version`), not DISTINCT over
        every record: the operator lists models on every pass (issue 24)."""
        rows = self._reader().execute(_MODELS).fetchall()
        return sorted(str(r[0]) for r in rows)

    def versions(self: Database, model: str | None = None) -> list[VersionInfo]:
        """Registered versions and versions that only have records so far, oldest first."""
        conn = self._reader()
        where, params = ("WHERE model = ?", (model,)) if model is not None else ("", ())
        registered: dict[tuple[str, str], tuple[dict[str, Any], str | None]] = {
            key: (json.loads(reg), at) for key, (reg, at) in _heads(self, conn, model).items()
        }
        counts = {
            (m, v): (int(n), int(first))
            for m, v, n, first in conn.execute(
                f"SELECT model, version, count(*), min(seq) FROM records {where}"
                " GROUP BY model, version",
                params,
            )
        }
        out = []
        for key in set(registered) | set(counts):
            reg, at = registered.get(key, ({}, None))
            state = "registered" if at else "unregistered"
            operator_state = OperatorState(self)
            known_good = operator_state.known_good(key[0])
            if key[1] in operator_state.rejections(key[0]):
                state = "rejected"
            elif known_good is not None and known_good.version == key[1]:
                state = "known-good"
            out.append(
                VersionInfo(
                    model=key[0],
                    version=key[1],
                    registered_at=at,
                    learner=reg.get("learner"),
                    release=reg.get("release"),
                    state=state,
                    records=counts.get(key, (0, 0))[0],
                )
            )
        order = {k: (at or "", counts.get(k, (0, 0))[1]) for k, (_, at) in registered.items()}
        out.sort(key=lambda v: (v.model, order.get((v.model, v.version), ("~", 0)), v.version))
        return out


# (model, version) -> (registration head JSON, registered_at), per open store. Why: a row of
# model_versions never changes once written (registration is idempotent, a changed content
# refused, nothing updates or deletes it), and on SQLite reading `registered_at` walks the
# overflow pages of the reference stored before it in the row: ~1 ms per read at a 1.3 MB
# reference, several per model per reconcile pass (issue 24). The (model, version) pairs
# themselves come from the primary key's index on every call, so a new version shows at once.
_HEADS: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], tuple[str, str]]] = (
    weakref.WeakKeyDictionary()
)


def _heads(
    db: Database, conn: Reader, model: str | None, version: str | None = None
) -> dict[tuple[str, str], tuple[str, str]]:
    """Registered (model, version) -> (head JSON, registered_at), for one model (or all, or
    one version), each row read from the table once per open store."""
    memo = _HEADS.setdefault(db, {})
    where, params = "", tuple[str, ...]()
    if model is not None:
        where, params = "WHERE model = ?", (model,)
        if version is not None:
            where, params = "WHERE model = ? AND version = ?", (model, version)
    sql = f"SELECT model, version FROM model_versions {where}"
    pairs = [(str(m), str(v)) for m, v in conn.execute(sql, params).fetchall()]
    for key in pairs:
        if key not in memo:
            row = conn.execute(
                "SELECT registration, registered_at FROM model_versions"
                " WHERE model = ? AND version = ?",
                key,
            ).fetchone()
            memo[key] = (str(row[0]), str(row[1]))
    return {key: memo[key] for key in pairs}


# SQLite and PostgreSQL both run this; each step is `min(model) > previous` on the index.
_MODELS = (
    "WITH RECURSIVE seen(model) AS ("
    " SELECT (SELECT min(model) FROM records)"
    " UNION ALL"
    " SELECT (SELECT min(r.model) FROM records r WHERE r.model > seen.model)"
    " FROM seen WHERE seen.model IS NOT NULL)"
    " SELECT model FROM seen WHERE model IS NOT NULL"
    " UNION SELECT model FROM model_versions"
)


def _same_content(new: Mapping[str, Any], registration: str, reference: str, artifact: Any) -> bool:
    """Whether a stored registration says what `new` says once both are read by today's
    contract. Why: a newer contract reads old bodies into a new shape (schema version 1 ->
    2), so the digest of the bytes stored by an earlier release differs from the same
    predictor's registration sent again after an upgrade; that is not a changed version."""
    stored = {
        k: v
        for k, v in json.loads(registration).items()
        if k not in ("artifact_sha256", "monitor_holdout")
    }
    stored["reference"] = json.loads(reference)
    stored["artifact"] = base64.b64encode(bytes(artifact)).decode()
    try:
        old, fresh = Registration.model_validate(stored), Registration.model_validate(dict(new))
    except ValidationError:
        return False
    return canonical_json(registration_dict(old)) == canonical_json(registration_dict(fresh))
