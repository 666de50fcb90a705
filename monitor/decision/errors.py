"""`PolicyError`: a spec field missing or malformed, named by its path.

A module of its own so that the spec's parsers (`policy.py`, `drift_policy.py`) share one
error without importing each other.
"""

from __future__ import annotations


class PolicyError(ValueError):
    """A spec field is missing or malformed; the message names the field (`spec.x.y`)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
