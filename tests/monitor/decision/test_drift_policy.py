"""`spec.drift.features` -> DriftSettings: what is accepted, and each refusal naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.core.drift_settings import DriftSettings, FeatureDriftSetting
from monitor.decision.policy import PolicyError, parse_policy


def spec(**extra: Any) -> dict[str, Any]:
    return {"model": "daily-rain", "targetRef": {"name": "predictor"}, **extra}


def test_settings_are_parsed_with_their_spelling_kept() -> None:
    drift = {
        "features": {
            "season": {"ignore": True},
            "temp": {"method": "jensen_shannon", "threshold": "0.20"},
            "wind": {"method": "kolmogorov_smirnov"},
            "cloud": {"method": "jensen_shannon", "threshold": 1},
            "kept": {"ignore": False, "method": "chi2"},
        }
    }
    policy = parse_policy(spec(drift=drift))
    features = policy.drift.features
    assert features["season"] == FeatureDriftSetting(ignore=True)
    assert features["temp"].threshold == 0.2 and features["temp"].threshold_text == "0.20"
    assert features["wind"] == FeatureDriftSetting(method="kolmogorov_smirnov")
    assert features["cloud"].threshold == 1.0
    assert policy.drift.ignored == frozenset({"season"})
    # Status shows them as the spec spelled them; they read back the same.
    shown = policy.drift.to_json()
    assert shown["temp"] == {"method": "jensen_shannon", "threshold": "0.20"}
    assert shown["season"] == {"ignore": True} and shown["kept"] == {"method": "chi2"}
    assert DriftSettings.from_json(shown).to_json() == shown


def test_no_drift_section_means_defaults() -> None:
    assert parse_policy(spec()).drift == DriftSettings()
    assert parse_policy(spec(drift={})).drift == DriftSettings()
    assert parse_policy(spec(drift={"features": {}})).drift == DriftSettings()


@pytest.mark.parametrize(
    ("drift", "field", "says"),
    [
        ("ignore season", "spec.drift", "must be an object"),
        ({"features": ["season"]}, "spec.drift.features", "must be an object"),
        ({"features": {"season": True}}, "spec.drift.features.season", "must be an object"),
        ({"features": {"season": {}}}, "spec.drift.features.season", "set ignore: true"),
        ({"features": {"season": {"ignored": True}}}, "spec.drift.features.season.ignored", ""),
        ({"features": {"season": {"ignore": "yes"}}}, "spec.drift.features.season.ignore", ""),
        (
            {"features": {"season": {"ignore": True, "method": "chi2"}}},
            "spec.drift.features.season.ignore",
            "takes no method or threshold",
        ),
        (
            {"features": {"temp": {"method": "wasserstein"}}},
            "spec.drift.features.temp.method",
            "must be one of",
        ),
        (
            {"features": {"temp": {"threshold": "0.2"}}},
            "spec.drift.features.temp.method",
            "a threshold needs the method",
        ),
        (
            {"features": {"temp": {"method": "jensen_shannon", "threshold": 0.2}}},
            "spec.drift.features.temp.threshold",
            "decimal string",
        ),
        (
            {"features": {"temp": {"method": "jensen_shannon", "threshold": "1.5"}}},
            "spec.drift.features.temp.threshold",
            "outside [0, 1]",
        ),
        (
            {"features": {"temp": {"method": "jensen_shannon", "threshold": "a lot"}}},
            "spec.drift.features.temp.threshold",
            "not a decimal",
        ),
        (
            {"features": {"season": {"method": "chi2", "threshold": "0.1"}}},
            "spec.drift.features.season.threshold",
            "p-value",
        ),
        ({"features": {"bad name": {"ignore": True}}}, "spec.drift.features.bad name", "valid"),
        (
            {"features": {f"f{i}": {"ignore": True} for i in range(501)}},
            "spec.drift.features",
            "at most 500",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_field(drift: Any, field: str, says: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(spec(drift=drift))
    assert caught.value.path == field
    assert says in caught.value.problem
    assert str(caught.value).startswith(f"{field}: ")


def test_an_ignored_feature_is_not_in_drift_detected() -> None:
    from monitor.core.evidence import ChunkEvidence, FeatureDrift
    from monitor.decision.conditions import drift_condition

    def chunk(*drift: FeatureDrift) -> ChunkEvidence:
        return ChunkEvidence("daily-rain", "v1", 3, 30, 1, 30, "", "", drift=list(drift))

    season = FeatureDrift("season", "chi2", 80.0, None, True)
    temp = FeatureDrift("temp", "jensen_shannon", 0.3, 0.1, True)
    assert drift_condition(chunk(season, temp)).message == "chunk 3: drift in season, temp"
    # Stored evidence may say alert and ignored at once (written by hand, or by an older
    # analysis): an ignored series never counts.
    ignored = FeatureDrift("season", "chi2", 80.0, None, True, ignored=True)
    found = drift_condition(chunk(ignored, temp))
    assert (found.status, found.message) == ("True", "chunk 3: drift in temp")
    assert drift_condition(chunk(ignored)).reason == "NoDrift"
