"""Benchmarks: run as scripts (`python bench/<name>.py`) or modules (`python -m bench.<name>`)."""
