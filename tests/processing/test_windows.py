"""Ring buffers, row medians, Theil-Sen rows and the bounded time window."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import theilslopes

from processing.errors import DetectorConfigError
from processing.windows import (
    TimeWindow,
    nan_median_rows,
    ring_ordered,
    ring_push,
    theil_sen_rows,
)


def test_ring_push_and_order_per_slot() -> None:
    buf = np.full((3, 4), np.nan)
    pos, count = np.zeros(3), np.zeros(3)
    for k in range(6):
        ring_push(buf, pos, count, np.array([0, 2]), np.array([float(k), 10.0 + k]))
    rows = ring_ordered(buf, pos, np.array([0, 1, 2]))
    assert rows[0].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert np.isnan(rows[1]).all()
    assert rows[2].tolist() == [12.0, 13.0, 14.0, 15.0]
    assert count.tolist() == [4.0, 0.0, 4.0]


@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=1, max_size=9),
        min_size=1,
        max_size=6,
    )
)
def test_nan_median_rows_matches_numpy(rows: list[list[float | None]]) -> None:
    width = max(len(r) for r in rows)
    data = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        data[i, : len(row)] = [np.nan if x is None else x for x in row]
    got = nan_median_rows(data)
    for i in range(len(rows)):
        finite = data[i][np.isfinite(data[i])]
        if finite.size:
            assert got[i] == pytest.approx(float(np.median(finite)))
        else:
            assert np.isnan(got[i])


@given(st.lists(st.floats(-100, 100), min_size=3, max_size=9), st.integers(0, 100))
def test_theil_sen_rows_matches_scipy(values: list[float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(1.0, 100.0, len(values)))
    got = theil_sen_rows(np.array([values]), times[None, :])[0]
    assert got == pytest.approx(theilslopes(values, times)[0], rel=1e-9, abs=1e-9)


def test_theil_sen_rows_ignores_missing_and_equal_times() -> None:
    values = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0]])
    times = np.array([[0.0, 1.0, 2.0], [5.0, 5.0, 5.0]])
    slopes = theil_sen_rows(values, times)
    assert slopes[0] == pytest.approx(1.0)
    assert np.isnan(slopes[1])


def test_time_window_bounds() -> None:
    window = TimeWindow(span_s=100.0, max_points=3)
    for t in (0.0, 10.0, 20.0, 30.0):
        window.append(t, t)
    assert window.times().tolist() == [10.0, 20.0, 30.0]  # max_points drops the oldest
    window.append(25.0, 1.0)
    assert window.dropped_out_of_order == 1
    window.append(float("nan"), 1.0)
    window.append(200.0, 2.0)
    assert window.times().tolist() == [200.0]  # older than the span
    assert window.since(150.0)[1].tolist() == [2.0]
    assert list(window) == [(200.0, 2.0)]
    with pytest.raises(DetectorConfigError):
        TimeWindow(span_s=0.0)
