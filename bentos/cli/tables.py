"""Reading a user's data file (CSV or Parquet) with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bentos.cli.errors import BadInputError

CSV_SUFFIXES = {".csv", ".gz", ".bz2", ".zip", ".xz"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def read_table(path: Path) -> pd.DataFrame:
    """CSV (pandas' parser, compressed too) or Parquet (pyarrow); anything else is refused."""
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        if suffix in CSV_SUFFIXES:
            return pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise BadInputError(f"{path}: cannot be read: {exc}") from exc
    raise BadInputError(f"{path}: unknown format {suffix!r} (use .csv or .parquet)")
