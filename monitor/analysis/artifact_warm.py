"""Imported once by the warm vetting process (the `forkserver` of `artifact.vet`), never by
the monitor itself.

Why: about half of a fresh vetting interpreter's time went to importing XGBoost, pandas and
scikit-learn (~1.5 s per registration). The forkserver imports this module once; every
vetting child is forked from it with all of that already loaded. The thread counts are set
before the libraries load (they read them then): one thread each, so forking is safe and a
child uses one core.
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import numpy  # noqa: E402, F401
import pandas  # noqa: E402, F401
import sklearn.metrics  # noqa: E402, F401
import xgboost  # noqa: E402, F401

import contract.schema  # noqa: E402, F401
import monitor.analysis.artifact_child  # noqa: E402
import monitor.analysis.holdout  # noqa: E402, F401
