"""Shared fixtures: the real dataset and small real models trained into a temporary store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

from bentos.training.data import Split, load_weather, time_split, weather_schema
from contract.schema import ModelSchema


@pytest.fixture(scope="session")
def schema() -> ModelSchema:
    return weather_schema()


@pytest.fixture(scope="session")
def split(schema: ModelSchema) -> Split:
    return time_split(load_weather(), schema)


@pytest.fixture(scope="session")
def bentoml_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private BentoML home for the session; subprocesses inherit it via the env."""
    home = tmp_path_factory.mktemp("bentoml")
    old = os.environ.get("BENTOML_HOME")
    os.environ["BENTOML_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("BENTOML_HOME", None)
    else:
        os.environ["BENTOML_HOME"] = old


@pytest.fixture(scope="session")
def trained_models(bentoml_home: Path, split: Split, schema: ModelSchema) -> dict[str, str]:
    """Release name -> BentoML tag, for `good`, `retrain` and `no-key-features` (a few s)."""
    from bentos.training.train import RELEASES, save_to_store, train_release

    tags = {}
    for name in ("good", "retrain", "no-key-features"):
        trained = train_release(RELEASES[name], split, schema)
        tags[name] = save_to_store(trained, schema)
    return tags


@pytest.fixture(scope="session")
def registrations(trained_models: dict[str, str]) -> dict[str, Any]:
    """Release name -> contract.registration.Registration built from the stored model."""
    import bentoml

    from bentos.packaging import registration_from_bento_model

    return {
        name: registration_from_bento_model(bentoml.models.get(tag))
        for name, tag in trained_models.items()
    }
