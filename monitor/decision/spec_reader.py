"""Typed reads of one object of a ModelMonitor spec, each refusal naming its dotted path.

Why a module: the spec's parsers (`policy.py`, and what it delegates to) all read strings,
integers, booleans and string-typed decimals the same way; Kubernetes API conventions forbid
floats in specs, so a decimal arrives as a string and is parsed through `Decimal`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from monitor.decision.errors import PolicyError


class SpecReader:
    """Typed access to one object of the spec, with the dotted path for error messages."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise PolicyError(f"{self.path}.{key}", "is required")
            return None
        return self.data[key]

    def child(self, key: str, required: bool = False) -> SpecReader:
        value = self._get(key, required)
        if value is None:
            return SpecReader({}, f"{self.path}.{key}")
        if not isinstance(value, Mapping):
            raise PolicyError(f"{self.path}.{key}", "must be an object")
        return SpecReader(value, f"{self.path}.{key}")

    def string(self, key: str, default: str = "", required: bool = False) -> str:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise PolicyError(f"{self.path}.{key}", f"must be a non-empty string, got {value!r}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in allowed:
            raise PolicyError(
                f"{self.path}.{key}", f"must be one of {list(allowed)}, got {value!r}"
            )
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise PolicyError(f"{self.path}.{key}", f"must be true or false, got {value!r}")
        return value

    def integer(self, key: str, default: int, minimum: int) -> int:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise PolicyError(f"{self.path}.{key}", f"must be an integer, got {value!r}")
        if value < minimum:
            raise PolicyError(f"{self.path}.{key}", f"must be at least {minimum}, got {value}")
        return value

    def number(self, key: str, default: str | None, low: float, high: float) -> Any:
        """A decimal given as a string (or an integer); floats are refused by convention."""
        value = self._get(key, False)
        if value is None:
            return None if default is None else float(Decimal(default))
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise PolicyError(
                f"{self.path}.{key}", f'must be a decimal string like "0.02", got {value!r}'
            )
        try:
            parsed = Decimal(str(value).strip())
        except InvalidOperation:
            raise PolicyError(f"{self.path}.{key}", f"{value!r} is not a decimal number") from None
        if not parsed.is_finite() or not Decimal(str(low)) <= parsed <= Decimal(str(high)):
            raise PolicyError(f"{self.path}.{key}", f"{value!r} is outside [{low}, {high}]")
        return float(parsed)
