"""`modelguard status`: the monitor's state, gathered from its HTTP API.

`python -m monitor status` reads it from the database; over HTTP the same facts come from
`GET /v1/models` (versions, state, records), `GET /v1/models/{model}/chunks` (chunks and
their labelled rows), the audit log (`known-good-declared` and the latest `policy-usable` /
`policy-unusable` entry of each model) and `/metrics` (`modelguard_chunk_rows`,
`_pending`, `_needed`: rows waiting for a chunk, published after each analysis cycle).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bentos.cli.monitor_http import call, get_json, path_of

CHUNKING_METRICS = {
    "modelguard_chunk_rows": "rows_per_chunk",
    "modelguard_chunk_rows_pending": "pending_rows",
    "modelguard_chunk_rows_needed": "rows_needed",
}
KNOWN_GOOD_KINDS = ("known-good", "known-good-declared")  # a promotion, a declaration
POLICY_KINDS = ("policy-usable", "policy-unusable")


def gather_status(
    root: str, token: str | None, timeout: float, model: str | None
) -> dict[str, Any]:
    """{versions, known_good, policy_problems} as `modelguard status --json` prints them."""
    versions = [
        v
        for v in get_json(root, "/v1/models", token, timeout, list)
        if isinstance(v, dict) and (model is None or v.get("model") == model)
    ]
    models = sorted({str(v["model"]) for v in versions})
    counted: dict[tuple[str, str], dict[str, int]] = {}
    for name in models:
        for chunk in get_json(root, path_of("v1", "models", name, "chunks"), token, timeout, list):
            key = (name, str(chunk.get("version")))
            seen = counted.setdefault(key, {"chunks": 0, "chunked_rows": 0, "labelled_rows": 0})
            seen["chunks"] += 1
            seen["chunked_rows"] += int(chunk.get("rows") or 0)
            seen["labelled_rows"] += int(chunk.get("labelled_rows") or 0)
    chunking = _chunking(root, timeout)
    rows = []
    for v in versions:
        key = (str(v["model"]), str(v["version"]))
        rows.append(
            {
                **v,
                **counted.get(key, {"chunks": 0, "chunked_rows": 0, "labelled_rows": 0}),
                "chunking": chunking.get(key),
            }
        )
    audit = _latest(root, token, timeout, model, (*KNOWN_GOOD_KINDS, *POLICY_KINDS))
    current = {str(v["model"]): str(v["version"]) for v in versions if v["state"] == "known-good"}
    return {
        "versions": rows,
        "known_good": _declared(audit, current, models),
        "policy_problems": _problems(audit, models),
    }


def _latest(
    root: str, token: str | None, timeout: float, model: str | None, kinds: tuple[str, ...]
) -> dict[tuple[str, str], dict[str, Any]]:
    """(model, kind) -> the newest audit entry of that kind (the log is oldest first)."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for kind in kinds:
        params = {"kind": kind, **({"model": model} if model else {})}
        for entry in get_json(root, "/v1/audit", token, timeout, list, params):
            if isinstance(entry, dict):
                newest[(str(entry.get("model")), kind)] = entry
    return newest


def _declared(
    audit: dict[tuple[str, str], dict[str, Any]], current: dict[str, str], models: list[str]
) -> list[dict[str, Any]]:
    """The known-good versions that were declared (by a user, the API or spec.knownGood),
    not promoted after probation: the newest of the two kinds decides."""
    found = []
    for name in models:
        entries = [audit[(name, k)] for k in KNOWN_GOOD_KINDS if (name, k) in audit]
        if not entries:
            continue
        last = max(entries, key=lambda e: int(e.get("id") or 0))
        if last.get("kind") == "known-good-declared" and last.get("version") == current.get(name):
            found.append(
                {
                    "model": name,
                    "version": last.get("version"),
                    "declared_by": last.get("by"),
                    "at": last.get("at") or last.get("time"),
                }
            )
    return found


def _problems(
    audit: dict[tuple[str, str], dict[str, Any]], models: list[str]
) -> list[dict[str, Any]]:
    """Each model whose ModelMonitor's policy was last reported unusable."""
    found = []
    for name in models:
        entries = [audit[(name, k)] for k in POLICY_KINDS if (name, k) in audit]
        if not entries:
            continue
        last = max(entries, key=lambda e: int(e.get("id") or 0))
        if last.get("kind") != "policy-unusable":
            continue
        found.append(
            {
                "model": name,
                "namespace": last.get("namespace"),
                "modelmonitor": last.get("modelmonitor"),
                "problems": [list(p) for p in last.get("problems") or [] if len(p) == 2],
                "at": last.get("at") or last.get("time"),
            }
        )
    return found


def _chunking(root: str, timeout: float) -> dict[tuple[str, str], dict[str, int]]:
    """(model, version) -> rows per chunk, pending and needed, from `/metrics` (no token:
    the exposition is open). Empty until the monitor has run an analysis cycle."""
    try:  # installed with modelguard[serve] (bentoml needs it too)
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        return {}
    text = call("GET", root + "/metrics", None, timeout).text
    found: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    try:
        samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    except ValueError:
        return {}  # not an exposition we can read: status goes without the chunking
    for sample in samples:
        field = CHUNKING_METRICS.get(sample.name)
        if field is None or "model" not in sample.labels:
            continue
        key = (sample.labels["model"], sample.labels.get("version", ""))
        found[key][field] = int(sample.value)
    return dict(found)
