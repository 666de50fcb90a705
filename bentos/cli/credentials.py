"""`modelguard credentials MODEL`: make a model's own predictor and labels tokens.

Why a command: per-model credentials (docs/monitor.md#per-model-credentials) are two random
tokens that must land in two places, in clear in the model's own Secrets (the predictor pods
and the label feeder mount them) and as sha256 digests in the monitor's file
(`MONITOR_MODEL_TOKENS_FILE`, a JSON mapping model -> {predictor, labels}), so the monitor's
Secret holds no usable token. The command adds the model's digests to a local copy of that
file and prints the model's two Secrets as YAML for `kubectl apply -f -`; the tokens are
printed nowhere else.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from pathlib import Path
from typing import Any

import yaml

from bentos.cli.errors import BadInputError
from contract.registration import NAME_PATTERN


def digest(token: str) -> str:
    """The file's form of a token: `sha256:<hex>` (what the monitor compares with)."""
    return f"sha256:{hashlib.sha256(token.encode()).hexdigest()}"


def secret_base(model: str) -> str:
    """A Kubernetes object name for the model's Secrets (DNS: no `_`, lower case)."""
    return re.sub(r"[^-a-z0-9]", "-", model.lower()).strip("-") or "model"


def read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{path}: not a JSON credentials file ({exc})") from None
    if not isinstance(found, dict):
        raise BadInputError(f"{path}: must be a JSON object of model -> credentials")
    return found


def make(
    model: str,
    tokens_file: Path,
    *,
    namespace: str,
    replace: bool = False,
    global_tokens_too: bool = False,
) -> str:
    """Add `model`'s digests to `tokens_file` and return its two Secrets as YAML."""
    if not re.match(NAME_PATTERN, model):
        raise BadInputError(f"model {model!r}: must match {NAME_PATTERN} (a model name)")
    entries = read_file(tokens_file)
    if model in entries and not replace:
        raise BadInputError(
            f"model {model!r} already has credentials in {tokens_file}; --replace makes new ones"
        )
    tokens = {role: secrets.token_hex(32) for role in ("predictor", "labels")}
    entry: dict[str, Any] = {role: digest(t) for role, t in tokens.items()}
    if global_tokens_too:
        entry["global_tokens_too"] = True
    entries[model] = entry
    tmp = tokens_file.with_name(tokens_file.name + ".tmp")
    tmp.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    tmp.replace(tokens_file)
    base = secret_base(model)
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": f"{base}-{role}-token",
                "namespace": namespace,
                "labels": {"modelguard.dev/model": base, "modelguard.dev/token-role": role},
            },
            "type": "Opaque",
            "stringData": {"token": token},
        }
        for role, token in tokens.items()
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)
