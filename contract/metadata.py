"""The keys of a packaged model's metadata in the BentoML model store.

Written when a model is packaged (`bentos/cli/package.py`, which `modelguard package` and
the shipped example's `bentos/training/train.py` both use), read when the predictor loads it
and registers it with the monitor (`bentos/packaging.py`), checked by `modelguard validate`.
BentoML metadata refuses None, so structured values travel as JSON strings or plain lists
and dicts.
"""

from __future__ import annotations

SCHEMA = "schema"  # contract.schema.ModelSchema as a JSON string
LEARNER = "learner"  # learner family: shadow gaps compare like with like
RELEASE = "release"  # a human name for the release
DESCRIPTION = "description"
METRICS = "metrics"  # {"reference": {...}, ...}: offline metrics; "reference" = shared hold-out
FEATURE_IMPORTANCE = "feature_importance"  # feature -> gain share
REFERENCE_FILE = "reference_file"  # file beside the booster: labelled hold-out rows, own scores
REFERENCE_ROWS = "reference_rows"
THRESHOLD_RULE = "threshold_rule"  # how the schema's threshold was chosen (informational)

XGBOOST_LEARNER = "xgboost"  # the one learner packaged and served, and LEARNER's default

DEFAULT_REFERENCE_FILE = "reference.json"
BOOSTER_FILE = "saved_model.ubj"  # what bentoml.xgboost.save_model writes

# What `modelguard validate` requires; release and description default to "".
REQUIRED = (SCHEMA, LEARNER, METRICS, FEATURE_IMPORTANCE, REFERENCE_FILE, REFERENCE_ROWS)
