"""Per-feature drift settings (`spec.drift.features` of a ModelMonitor), as plain data.

Why they exist: a feature that is meant to move against an all-year reference (a season, a
month) alerts in every chunk, which is true and tells the user nothing. A setting either
ignores the feature's drift (no alert, left out of the ranking and of the multivariate
reconstruction) or picks the one method whose alert counts for it, optionally with a
threshold of its own instead of the reference-derived one (mean + 3 sd over reference
chunks). Parsed and validated in `monitor.decision.drift_policy`, applied by the analysis
(`monitor.analysis.univariate`, `chunks`), shown in status, the report and the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Method names as `FeatureDrift.method` has them; which ones a feature has depends on its type.
CONTINUOUS_METHODS = ("kolmogorov_smirnov", "jensen_shannon")
CATEGORICAL_METHODS = ("chi2", "jensen_shannon")
METHODS = ("jensen_shannon", "kolmogorov_smirnov", "chi2")


@dataclass(frozen=True)
class FeatureDriftSetting:
    """One feature's setting: `ignore`, or `method` (the only one that alerts) with an
    optional `threshold` (the statistic alerts above it; chi2 keeps its p-value rule)."""

    ignore: bool = False
    method: str | None = None
    threshold: float | None = None
    # The threshold as the spec spelled it ("0.2"), so status shows what the user wrote.
    threshold_text: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The spec's spelling (camelCase, threshold as a string)."""
        if self.ignore:
            return {"ignore": True}
        out: dict[str, Any] = {}
        if self.method is not None:
            out["method"] = self.method
        if self.threshold is not None:
            out["threshold"] = self.threshold_text or str(self.threshold)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureDriftSetting:
        threshold = data.get("threshold")
        return cls(
            ignore=bool(data.get("ignore", False)),
            method=data.get("method"),
            threshold=None if threshold is None else float(threshold),
            threshold_text=None if threshold is None else str(threshold),
        )


@dataclass(frozen=True)
class DriftSettings:
    """Feature name -> its setting; features not named keep the analysis defaults."""

    features: Mapping[str, FeatureDriftSetting] = field(default_factory=dict)

    @property
    def ignored(self) -> frozenset[str]:
        return frozenset(name for name, s in self.features.items() if s.ignore)

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {name: self.features[name].to_json() for name in sorted(self.features)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> DriftSettings:
        return cls({k: FeatureDriftSetting.from_json(v) for k, v in (data or {}).items()})

    def problems(self, categorical: Mapping[str, bool]) -> list[str]:
        """What cannot apply to a schema (feature -> is categorical): a feature it does not
        have, or a method the feature's type has no statistic for. Such a setting is not
        applied (the feature keeps its defaults), so it must be said."""
        found = []
        for name in sorted(self.features):
            setting = self.features[name]
            if name not in categorical:
                found.append(f"spec.drift.features.{name}: no such feature in the schema")
                continue
            methods = CATEGORICAL_METHODS if categorical[name] else CONTINUOUS_METHODS
            if setting.method is not None and setting.method not in methods:
                kind = "categorical" if categorical[name] else "numeric"
                found.append(
                    f"spec.drift.features.{name}.method: {setting.method} does not apply to "
                    f"a {kind} feature; use one of {list(methods)}"
                )
        return found
