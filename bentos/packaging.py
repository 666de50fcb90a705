"""A packaged model in the BentoML store, read back as the monitor's registration.

Used by the predictor at start-up (it registers the version it serves), by `modelguard
validate` (the registration it would send) and `modelguard candidate add`. The
booster travels as XGBoost UBJSON, which cannot run code when loaded: never pickle.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from contract import metadata as md_keys
from contract.registration import Registration


def registration_from_bento_model(model: Any) -> Registration:
    """The registration payload of a `bentoml.Model` saved with `contract.metadata` keys."""
    md = model.info.metadata
    reference_file = md.get(md_keys.REFERENCE_FILE, md_keys.DEFAULT_REFERENCE_FILE)
    ref = json.loads(Path(model.path_of(reference_file)).read_text())
    raw = Path(model.path_of(md_keys.BOOSTER_FILE)).read_bytes()
    return Registration.model_validate(
        {
            "model": model.tag.name,
            "version": model.tag.version,
            "learner": md.get(md_keys.LEARNER, md_keys.XGBOOST_LEARNER),
            "release": md.get(md_keys.RELEASE, ""),
            "description": md.get(md_keys.DESCRIPTION, ""),
            "schema": json.loads(md[md_keys.SCHEMA]),
            "metrics": md.get(md_keys.METRICS, {}),
            "feature_importance": md.get(md_keys.FEATURE_IMPORTANCE, {}),
            "reference": ref,
            "artifact": base64.b64encode(raw).decode("ascii"),
            "artifact_format": "xgboost-ubj",
        }
    )
