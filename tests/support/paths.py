"""The repository's root, for tests at any depth of the mirrored tree."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
