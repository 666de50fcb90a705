"""Vetting artifacts in children of one warm process (monitor/analysis/artifact.py): the same
warm process vets artifact after artifact, a refused artifact leaves it serving, a dead one
is replaced, and an artifact that runs past its timeout is killed without holding up another.
Real tiny boosters trained here; real child processes."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import psutil
import pytest
import xgboost

from monitor.analysis.artifact import ArtifactRefusedError, Vetted, vet

FEATURES = 3
LIMIT = 1536 * 1024**2
TIMEOUT = 0.5  # the hanging booster takes longer than this to load (1.5-7 s measured)


def tiny(seed: int) -> tuple[bytes, dict[str, Any], list[dict[str, Any]]]:
    """A small booster, its schema and 200 reference rows scored by it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, FEATURES))
    y = (x[:, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    booster = xgboost.train(
        {"max_depth": 2, "objective": "binary:logistic", "nthread": 1, "seed": seed},
        xgboost.DMatrix(x, label=y),
        num_boost_round=5,
    )
    p = booster.inplace_predict(x.astype(np.float32))
    names = [f"x{i}" for i in range(FEATURES)]
    reference = [
        {
            **dict(zip(names, map(float, row), strict=True)),
            "label": int(lab),
            "probability": float(q),
        }
        for row, lab, q in zip(x, y, p, strict=True)
    ]
    schema = {"features": [{"name": n} for n in names], "label": {"name": "label"}}
    return bytes(booster.save_raw("ubj")), schema, reference


def slow(raw: bytes, trees: int = 60_000) -> bytes:
    """The booster's first tree repeated `trees` times, as JSON: seconds to load."""
    model = json.loads(bytes(_booster(raw).save_raw("json")))
    gb = model["learner"]["gradient_booster"]["model"]
    first = gb["trees"][0]
    gb["trees"] = [{**first, "id": i} for i in range(trees)]
    gb["tree_info"] = [0] * trees
    gb["iteration_indptr"] = list(range(trees + 1))
    gb["gbtree_model_param"]["num_trees"] = str(trees)
    return json.dumps(model).encode()


def _booster(raw: bytes) -> xgboost.Booster:
    booster = xgboost.Booster()
    booster.load_model(bytearray(raw))
    return booster


def vetting(raw: bytes, schema: dict[str, Any], ref: list[Any], timeout: float = 60) -> Vetted:
    return vet(raw, schema, ref, memory_bytes=LIMIT, timeout_seconds=timeout)


def test_one_warm_process_vets_artifact_after_artifact_and_several_at_once() -> None:
    models = [tiny(seed) for seed in range(4)]
    first, second = (vetting(*m) for m in models[:2])
    assert first.warm_pid == second.warm_pid != os.getpid()
    assert first.holdout["roc_auc"] != second.holdout["roc_auc"]  # each its own booster
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda m: vetting(*m), models[2:]))
    assert {v.warm_pid for v in together} == {first.warm_pid}
    assert all(v.features == FEATURES for v in together)


def test_a_broken_artifact_is_refused_and_the_warm_process_serves_the_next() -> None:
    raw, schema, ref = tiny(1)
    before = vetting(raw, schema, ref)
    for broken in (b"not a booster", raw[: len(raw) // 3]):
        with pytest.raises(ArtifactRefusedError) as refused:
            vetting(broken, schema, ref)
        assert refused.value.loc == "artifact" and refused.value.status == 400
    with pytest.raises(ArtifactRefusedError, match="takes 3 features, the schema names 2"):
        vetting(raw, {**schema, "features": schema["features"][:2]}, ref)
    assert vetting(raw, schema, ref).warm_pid == before.warm_pid


def test_a_dead_warm_process_is_replaced_by_the_next_vetting() -> None:
    raw, schema, ref = tiny(2)
    dead = vetting(raw, schema, ref).warm_pid
    os.kill(dead, signal.SIGKILL)
    while not _gone(dead):
        time.sleep(0.05)  # dead (a zombie until the next vetting reaps and replaces it)
    again = vetting(raw, schema, ref)
    assert again.warm_pid != dead and again.features == FEATURES


def test_an_artifact_past_its_timeout_is_killed_and_holds_up_no_other() -> None:
    raw, schema, ref = tiny(3)
    warm = vetting(raw, schema, ref).warm_pid
    hanging, good = slow(raw), tiny(4)

    def past_timeout() -> Exception:
        try:
            vetting(hanging, schema, ref, timeout=TIMEOUT)
        except ArtifactRefusedError as exc:
            return exc
        raise AssertionError(f"a booster of 60,000 trees loaded within {TIMEOUT} s")

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(past_timeout)
        while not _running_children(warm):
            time.sleep(0.01)  # the hanging child is loading
        other = vetting(*good)
        overlapped = not pending.done()
        refusal = pending.result()
    assert other.features == FEATURES and overlapped  # vetted while the other still ran
    assert f"took longer than {TIMEOUT:g} s" in str(refusal)
    assert not _running_children(warm)  # killed
    assert vetting(raw, schema, ref).warm_pid == warm


def _running_children(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children()


def _gone(pid: int) -> bool:
    """Killed: a zombie, or already reaped (by multiprocessing's own bookkeeping)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
