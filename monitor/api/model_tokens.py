"""Per-model credentials: a mounted file mapping each model to its predictor and labels tokens.

Why a file (a mounted Secret) rather than TokenReview: it works the same in a cluster, in the
emulator and on a laptop, needs no extra RBAC (`tokenreviews/create` is cluster-scoped) and no
API call per request; a Secret mounted as a directory is updated in place by the kubelet, so
the monitor re-reads the file when it changes and adding a model needs no restart
(docs/monitor.md#trust-boundary).

The file is JSON: `{"<model>": {"predictor": "<token>", "labels": "<token>"}, ...}`. A token
is given either in clear or as `sha256:<64 hex digits>` (the file then holds no usable
secret). `"global_tokens_too": true` on a model keeps the global predictor/labels tokens
working for it while its predictors move to their own (a predictor drops records the monitor
refuses with 401/403, so a switch without it loses the records of the pods not yet rolled).
Every token is kept only as its sha256 digest, compared in constant time, and never logged.
A file that cannot be read or is invalid at start-up stops the monitor; on a reload the last
good mapping stays and a warning names the problem (not a token).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Annotated, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from contract.records import Name
from monitor.core.settings import ConfigError

logger = logging.getLogger("modelguard.monitor")
HASHED = re.compile(r"^sha256:([0-9a-f]{64})$")
RECHECK_SECONDS = 1.0  # how often the file's identity (inode, size, mtime) is looked at


def digest(token: str) -> bytes:
    """The sha256 digest every token is compared by (fixed length: constant-time compare)."""
    return hashlib.sha256(token.encode()).digest()


def stored_digest(value: str) -> bytes:
    """A file value's digest: `sha256:<hex>` as given, anything else hashed."""
    hashed = HASHED.match(value)
    return bytes.fromhex(hashed.group(1)) if hashed else digest(value)


Token = Annotated[str, Field(min_length=16, max_length=512)]


class ModelCredentials(BaseModel):
    """One model's two credentials (both required: a listed model is written by no other)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    predictor: Token = Field(description="Posts this model's records, registers its versions")
    labels: Token = Field(description="Posts labels of this model's records")
    global_tokens_too: bool = Field(
        default=False,
        description="The global predictor/labels tokens still write this model (a migration"
        " to per-model credentials; off = only its own tokens and the operator's)",
    )


FILE = TypeAdapter(dict[Name, ModelCredentials])

# (model, role) -> digest
Digests = dict[tuple[str, str], bytes]


class Loaded(NamedTuple):
    digests: Digests
    global_too: frozenset[str]  # models the global tokens still write


def parse(raw: bytes, where: str, reserved: frozenset[bytes] = frozenset()) -> Loaded:
    """The digests of a file's credentials; ValueError naming the problem (not a token).
    `reserved`: the global role tokens' digests, which no model may reuse."""
    try:
        entries = FILE.validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{where}: {problems}") from None
    found: Digests = {}
    for model, creds in entries.items():
        found[(model, "predictor")] = stored_digest(creds.predictor)
        found[(model, "labels")] = stored_digest(creds.labels)
    seen: dict[bytes, tuple[str, str]] = {}
    for key, value in found.items():
        if value in reserved:
            raise ValueError(
                f"{where}: {key[0]}.{key[1]} has the token of a global role"
                " (MONITOR_<ROLE>_TOKEN): give each model and role its own"
            )
        if value in seen:
            raise ValueError(
                f"{where}: {key[0]}.{key[1]} has the same token as {seen[value][0]}."
                f"{seen[value][1]}: give each model and role its own"
            )
        seen[value] = key
    return Loaded(found, frozenset(m for m, c in entries.items() if c.global_tokens_too))


def identity(path: Path) -> tuple[int, int, int]:
    """What changes when the file (or the Secret's `..data` link behind it) is replaced."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


class ModelTokens:
    """The file's credentials, re-read when the file changes (checked at most once a second)."""

    def __init__(self, path: Path | None, reserved: frozenset[bytes] = frozenset()) -> None:
        self.path, self._reserved = path, reserved
        self._lock = threading.Lock()
        self._loaded = Loaded({}, frozenset())
        self._seen: tuple[int, int, int] | None = None
        self._checked = 0.0
        if path is not None:
            try:
                self._seen = identity(path)
                raw = path.read_bytes()
            except OSError as exc:
                raise ConfigError(f"MONITOR_MODEL_TOKENS_FILE: cannot read {path}: {exc}") from None
            try:
                self._loaded = parse(raw, str(path), self._reserved)
            except ValueError as exc:
                raise ConfigError(f"MONITOR_MODEL_TOKENS_FILE: {exc}") from None
            self._checked = time.monotonic()

    def loaded(self) -> Loaded:
        """The file's credentials now; re-read first when it changed since the last look."""
        if self.path is not None and time.monotonic() - self._checked >= RECHECK_SECONDS:
            with self._lock:
                self._reload(self.path)
        return self._loaded

    def current(self) -> Digests:
        return self.loaded().digests

    def models(self) -> frozenset[str]:
        """Models with credentials of their own."""
        return frozenset(model for model, _ in self.current())

    def closed_to_global(self) -> frozenset[str]:
        """Models the global predictor/labels tokens may not write."""
        loaded = self.loaded()
        return frozenset(m for m, _ in loaded.digests) - loaded.global_too

    def _reload(self, path: Path) -> None:
        self._checked = time.monotonic()
        try:
            now = identity(path)
        except OSError as exc:
            now = (0, 0, 0)  # gone: warn once, reload when it is back
            if now != self._seen:
                logger.warning("per-model credentials file unreadable, the last stay: %s", exc)
            self._seen = now
            return
        if now == self._seen:
            return
        self._seen = now  # a bad file is reported once, not every second
        try:
            loaded = parse(path.read_bytes(), str(path), self._reserved)
        except (OSError, ValueError) as exc:
            logger.warning("per-model credentials not reloaded, the last good ones stay: %s", exc)
            return
        self._loaded = loaded
        n = len(loaded.digests) // 2
        logger.info("per-model credentials reloaded from %s: %d models", path, n)
