"""Sensor noise: heavy tails, resolution, missed counts and the new normal after a visit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.signals.noise import Maintenance, quantise, student_t, zero_inflate


def test_student_t_keeps_the_spread_but_fattens_the_tails() -> None:
    rng = np.random.default_rng(0)
    heavy = student_t(rng, 200_000, 2.0)
    normal = rng.normal(0.0, 2.0, 200_000)
    assert heavy.std() == pytest.approx(2.0, rel=0.1)
    beyond = (np.abs(heavy) > 8.0).mean()
    assert beyond > 5 * max((np.abs(normal) > 8.0).mean(), 1e-6)
    with pytest.raises(ValueError, match="df"):
        student_t(rng, 3, 1.0, df=2.0)


@given(st.floats(min_value=1e-3, max_value=10.0), st.integers(0, 1000))
def test_quantised_values_sit_on_the_grid(step: float, seed: int) -> None:
    values = np.random.default_rng(seed).normal(50.0, 10.0, 100)
    out = quantise(values, step)
    assert np.allclose(out / step, np.round(out / step))
    assert np.all(np.abs(out - values) <= step / 2 + 1e-9)


def test_zero_inflation_empties_whole_intervals() -> None:
    rng = np.random.default_rng(1)
    counts = rng.poisson(20.0, (10_000, 3)).astype(np.float64)
    out = zero_inflate(rng, counts, 0.1)
    empty = (out == 0).all(axis=1)
    assert empty.mean() == pytest.approx(0.1, abs=0.02)
    np.testing.assert_array_equal(out[~empty], counts[~empty])


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 50), st.integers(0, 1000))
def test_maintenance_is_one_story_however_it_is_chunked(cut: int, seed: int) -> None:
    t = 3600.0 * np.arange(24 * 90, dtype=np.float64)
    whole = Maintenance(10 * 86_400.0, 0.1).gains(np.random.default_rng(seed), t)
    chunked = Maintenance(10 * 86_400.0, 0.1)
    rng = np.random.default_rng(seed)
    split = cut * 24
    parts = [chunked.gains(rng, t[:split]), chunked.gains(rng, t[split:])]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    steps = np.flatnonzero(np.diff(whole) != 0)
    assert 3 <= steps.size <= 20  # about one visit in ten days, each a new normal that holds
    assert whole[0] == 1.0
