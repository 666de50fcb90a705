"""`spec.drift` of a ModelMonitor, parsed and validated into `DriftSettings`.

    drift:
      features:
        season: {ignore: true}
        temp: {method: jensen_shannon, threshold: "0.2"}

The CRD refuses wrong types at `kubectl apply`; the rules between fields (ignore takes no
method, a threshold needs its method, chi2 takes none) are checked here, each error naming
the field. Thresholds follow the other spec numbers: a decimal string (or an integer), no
floats, parsed through `Decimal`. Whether a named feature exists, and whether the method
fits its type, depends on the version's schema: the operator says so in PolicyUnusable
(`DriftSettings.problems`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from monitor.core.drift_settings import METHODS, DriftSettings, FeatureDriftSetting
from monitor.decision.errors import PolicyError

# As `contract.schema.Feature.name` admits.
_FEATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_KEYS = ("ignore", "method", "threshold")
MAX_FEATURES = 500


def parse_drift(value: Any, path: str = "spec.drift") -> DriftSettings:
    """`spec.drift` -> DriftSettings; raises `PolicyError` naming the first bad field."""
    if value is None:
        return DriftSettings()
    if not isinstance(value, Mapping):
        raise PolicyError(path, "must be an object")
    features = value.get("features")
    if features is None:
        return DriftSettings()
    where = f"{path}.features"
    if not isinstance(features, Mapping):
        raise PolicyError(where, "must be an object: feature name -> setting")
    if len(features) > MAX_FEATURES:
        raise PolicyError(where, f"at most {MAX_FEATURES} features, got {len(features)}")
    parsed = {}
    for name, setting in features.items():
        if not isinstance(name, str) or not _FEATURE.match(name):
            raise PolicyError(f"{where}.{name}", f"{name!r} is not a valid feature name")
        parsed[name] = _setting(setting, f"{where}.{name}")
    return DriftSettings(parsed)


def _setting(value: Any, path: str) -> FeatureDriftSetting:
    if not isinstance(value, Mapping):
        raise PolicyError(path, "must be an object with ignore, or method and threshold")
    unknown = sorted(str(k) for k in value if k not in _KEYS)
    if unknown:
        raise PolicyError(f"{path}.{unknown[0]}", f"unknown field; use {list(_KEYS)}")
    ignore = value.get("ignore")
    if ignore is not None and not isinstance(ignore, bool):
        raise PolicyError(f"{path}.ignore", f"must be true or false, got {ignore!r}")
    method = value.get("method")
    if method is not None and method not in METHODS:
        raise PolicyError(f"{path}.method", f"must be one of {list(METHODS)}, got {method!r}")
    raw = value.get("threshold")
    if ignore:
        if method is not None or raw is not None:
            raise PolicyError(f"{path}.ignore", "an ignored feature takes no method or threshold")
        return FeatureDriftSetting(ignore=True)
    if method is None and raw is None:
        raise PolicyError(path, "set ignore: true, or a method (and a threshold)")
    if raw is not None and method is None:
        raise PolicyError(f"{path}.method", "a threshold needs the method it is for")
    if raw is not None and method == "chi2":
        raise PolicyError(
            f"{path}.threshold",
            "chi2 alerts on its p-value (< 0.05) and takes no threshold; "
            "set one on jensen_shannon instead",
        )
    threshold = None if raw is None else _decimal(raw, f"{path}.threshold")
    return FeatureDriftSetting(
        method=method,
        threshold=threshold,
        threshold_text=None if raw is None else str(raw).strip(),
    )


def _decimal(value: Any, path: str) -> float:
    """A decimal in [0, 1] given as a string or an integer (floats refused by convention):
    both Jensen-Shannon distance and the Kolmogorov-Smirnov statistic lie there."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PolicyError(path, f'must be a decimal string like "0.2", got {value!r}')
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        raise PolicyError(path, f"{value!r} is not a decimal number") from None
    if not parsed.is_finite() or not Decimal(0) <= parsed <= Decimal(1):
        raise PolicyError(path, f"{value!r} is outside [0, 1]")
    return float(parsed)
