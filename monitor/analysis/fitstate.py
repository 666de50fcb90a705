"""A version's fitted calculators as bytes for the store, and the fingerprint they live under.

Why pickle: the fitted state is NannyML's CBPE and drift calculators, scikit-learn's PCA,
an XGBoost booster and pandas frames, objects without a stable format of their own; pickling
them is how NannyML itself persists fitted calculators (`nannyml.io.store.FilesystemStore`
with its `JoblibPickleSerializer`). Unpickling runs code, so the bytes must come from a
monitor: only the monitor writes them, into its own database (the trust this takes is
written in monitor/store/fits.py).

The fingerprint names everything a fit depends on -- the registration's content digest
(artifact, reference, schema), what is fitted (chunk size and interval level, or the
sampling-error bound of a sizing), `FORMAT` (bumped when `FittedVersion` changes shape) and
the versions of the libraries inside the pickle -- so a change of any of them is a new key
and the old state is simply never read again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import sys
import zlib
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed
from typing import Any, TypeVar

log = logging.getLogger(__name__)

FORMAT = 1  # the layout of FittedVersion / Sizing as pickled
LIBRARIES = ("nannyml", "xgboost", "scikit-learn", "pandas", "numpy", "scipy", "pydantic")
T = TypeVar("T")


def _libraries() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            found[name] = installed(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


_LIBS = _libraries()


def fingerprint(kind: str, digest: str, **inputs: Any) -> str:
    """sha256 over what a `kind` ("fit", "sizing") of a registration `digest` depends on."""
    body = {"format": FORMAT, "kind": kind, "registration": digest, "libs": _LIBS, **inputs}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def dump(state: object) -> bytes:
    """Pickled and compressed (a fitted version is ~1-3 MB pickled, mostly its reference)."""
    return zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)


def load(data: bytes, expected: type[T]) -> T | None:
    """The object in `data` if it is an `expected`; None (and a warning) if it is not
    readable, e.g. written by code whose classes have since changed."""
    try:
        state = pickle.loads(zlib.decompress(data))  # noqa: S301 (the monitor's own bytes)
    except Exception as exc:  # an unreadable state is refitted, never fatal
        log.warning("saved fitted state unreadable, refitting: %s", exc)
        return None
    return state if isinstance(state, expected) else None
