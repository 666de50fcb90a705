"""Validated records to the model's input matrix, prediction ids, and the opt-in explanations.

Kept apart from the service so a unit test can hold `matrix_builder` equal to the contract's
`ModelSchema.to_matrix` (which the monitor's shadow re-scoring uses) without loading a model.
"""

from __future__ import annotations

import json
import math
import operator
import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xgboost as xgb

from contract.schema import ModelSchema


def matrix_builder(schema: ModelSchema) -> Callable[[Sequence[Any]], np.ndarray]:
    """Validated records -> float32 matrix, equal to `schema.to_matrix(DataFrame(records))`.

    Same order, categories as their index, None as NaN, values through float64 first. A
    few records are converted cell by cell; from `COLUMNS_FROM` records on, the values are
    fetched per record in one C-level getter call and converted a column at a time (numpy
    turns None into NaN; only category columns are looked up in Python): 100-record bodies
    convert in about half the time, single records stay on the cheaper per-cell path.
    """
    names = schema.feature_names
    codes = {
        f.name: {c: float(i) for i, c in enumerate(f.categories or [])}
        for f in schema.features
        if f.dtype == "category"
    }
    tables = [codes.get(name) for name in names]
    by_attribute, by_key = operator.attrgetter(*names), operator.itemgetter(*names)
    nan = math.nan

    def convert(name: str) -> Callable[[Any], float]:
        if name in codes:
            table = codes[name]
            return lambda v: nan if v is None else table.get(v, nan)  # unknown: missing
        return lambda v: nan if v is None else v

    converters = [(name, convert(name)) for name in names]

    def by_cell(records: Sequence[Any]) -> np.ndarray:
        rows = []
        for rec in records:
            values = rec if isinstance(rec, dict) else rec.__dict__
            rows.append([conv(values[name]) for name, conv in converters])
        return np.array(rows, dtype=np.float64).astype(np.float32)

    def by_column(records: Sequence[Any]) -> np.ndarray:
        get = by_key if isinstance(records[0], dict) else by_attribute
        rows = list(map(get, records)) if len(names) > 1 else [(get(r),) for r in records]
        out = np.empty((len(rows), len(names)), dtype=np.float64)
        for j, (column, table) in enumerate(zip(zip(*rows, strict=True), tables, strict=True)):
            out[:, j] = column if table is None else [table.get(v, nan) for v in column]
        return out.astype(np.float32)

    def build(records: Sequence[Any]) -> np.ndarray:
        return by_column(records) if len(records) >= COLUMNS_FROM else by_cell(records)

    return build


COLUMNS_FROM = 16  # records per request from which the column-wise conversion is cheaper


def new_prediction_ids(n: int) -> list[str]:
    """uuid4 hex strings; one urandom call per request instead of one per record."""
    if n == 1:
        return [uuid.uuid4().hex]
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.tobytes().hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]


def explainer(
    booster: xgb.Booster, names: Sequence[str], threads: int = 1
) -> Callable[[np.ndarray, int], list[str]]:
    """Per record, its top-k contributions in log-odds as a JSON object (opt-in: `?explain=k`).

    XGBoost's exact TreeSHAP (`pred_contribs=True`): one column per feature plus the bias
    (the base value). For every record `base_value + sum of all contributions` is the
    model's margin (the log-odds whose sigmoid is the served probability); the top-k are the
    k largest by absolute value, largest first (ties in feature order), and `others` is the
    sum of the rest, so `base_value + sum(top-k) + others` is the margin as well.

    One TreeSHAP call over the whole body. The DMatrix gets the worker's `threads` (the
    booster's `nthread`): by default XGBoost builds it with one OpenMP thread per core, and
    with one worker per core those threads spin against the other workers (measured: 1.9
    cores busy for one core's worth of requests, docs/performance.md).
    """
    quoted = [json.dumps(n) for n in names]
    n_features = len(names)

    def explain(x: np.ndarray, k: int) -> list[str]:
        contribs = np.asarray(
            booster.predict(
                xgb.DMatrix(x, missing=np.nan, nthread=threads),
                pred_contribs=True,
                validate_features=False,
            ),
            dtype=np.float64,
        )
        features, base = contribs[:, :n_features], contribs[:, n_features]
        order = np.argsort(-np.abs(features), axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(features, order, axis=1)
        others = features.sum(axis=1) - top.sum(axis=1)
        out = []
        for idx, vals, b, rest in zip(
            order.tolist(), top.tolist(), base.tolist(), others.tolist(), strict=True
        ):
            items = ",".join(
                f'{{"feature":{quoted[j]},"value":{v!r}}}' for j, v in zip(idx, vals, strict=True)
            )
            out.append(f'{{"base_value":{b!r},"contributions":[{items}],"others":{rest!r}}}')
        return out

    return explain
