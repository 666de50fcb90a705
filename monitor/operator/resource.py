"""A ModelMonitor as the operator reads it: one typed view built once per pass from the API body.

Why a module of its own: the raw body (a dict, camelCase, as the API server or the offline
synthesis sends it) was unpacked in a dozen places, each with its own namespace default. The
view reads it once, with one rule for each field: a namespace-less body is in `default` (as
the API server would place it), a missing name is "", a malformed `metadata` or `status` reads
as empty. `spec` is kept as sent: `monitor.decision.policy.parse_policy` validates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class ModelMonitor:
    name: str
    namespace: str = DEFAULT_NAMESPACE
    uid: str | None = None
    generation: int | None = None
    spec: Any = None  # as sent; parse_policy says what is wrong with it
    status: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ModelMonitor:
        meta = _mapping(body.get("metadata"))
        generation = meta.get("generation")
        return cls(
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or DEFAULT_NAMESPACE),
            uid=str(meta["uid"]) if meta.get("uid") is not None else None,
            generation=generation if isinstance(generation, int) else None,
            spec=body.get("spec"),
            status=_mapping(body.get("status")),
        )

    @property
    def conditions(self) -> list[Mapping[str, Any]]:
        """`status.conditions` as last written (merged with, never replaced blindly)."""
        return [c for c in self.status.get("conditions") or [] if isinstance(c, Mapping)]

    @property
    def observed_generation(self) -> int:
        return int(self.status.get("observedGeneration") or 0)

    @property
    def declared_model(self) -> str | None:
        """`spec.model` when it is a non-empty string (an invalid spec may still name it)."""
        model = self.spec.get("model") if isinstance(self.spec, Mapping) else None
        return model if isinstance(model, str) and model else None

    @property
    def target_name(self) -> str | None:
        """`spec.targetRef.name`, the Deployment the monitor guards (None: not given)."""
        ref = self.spec.get("targetRef") if isinstance(self.spec, Mapping) else None
        name = ref.get("name") if isinstance(ref, Mapping) else None
        return str(name) if name is not None else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
