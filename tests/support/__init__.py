"""Reusable test helpers: a real `bentoml serve` predictor and a records receiver."""
