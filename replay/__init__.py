"""Replaying 2013 H2 through the real predictor and monitor: `make replay`, `make demo`, e2e."""
