"""The calibrated detector: calibration, learning that never locks, events, time, both paths."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.detectors import CalibratedDetector, restore
from processing.detectors._tail import TailConfig, tail_init, tail_learn, tail_p
from processing.errors import DetectorConfigError
from processing.offline.backtest import backtest
from processing.offline.corpus import FAMILIES, labelled_series

FloatArray = npt.NDArray[np.float64]
T0 = 1_790_000_000.0
THRESHOLD = CalibratedDetector.default_threshold


def noise(n: int, seed: int = 0, step_s: float = 300.0) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    times = np.asarray(T0 + step_s * np.arange(n), dtype=np.float64)
    return times, np.asarray(10.0 + rng.normal(0.0, 1.0, n), dtype=np.float64)


def series_scores(values: FloatArray, times: FloatArray, **params: float | bool) -> FloatArray:
    scores, _ = CalibratedDetector(**params).process_series(values, times)  # type: ignore[arg-type]
    return scores


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_anomaly_free_families_flag_at_most_one_point_in_2000(family: str) -> None:
    # After the first tenth (the harness's burn-in): before its first cycles, a stream's
    # daily pattern is indistinguishable from a level shift.
    flagged = points = 0
    for seed in range(2):
        s = labelled_series(family, None, seed=seed, n=4000)
        result = backtest(s.times_s, s.values)
        flagged += int(result.flags[400:].sum())
        points += s.values.size - 400
    assert flagged <= points / 2000


@pytest.mark.parametrize("family", ["daily", "irregular", "zero_counts", "weekly"])
def test_single_stream_path_equals_the_vectorised_path(family: str) -> None:
    s = labelled_series(family, "level_shift", seed=3, n=1500)
    fast = CalibratedDetector()
    fast_scores, fast_flags = fast.process_series(s.values, s.times_s)
    vector = CalibratedDetector()
    slot = np.zeros(1, dtype=np.intp)
    vector_scores = np.array(
        [
            vector.process_many(slot, [v], [t])[0][0]
            for t, v in zip(s.times_s, s.values, strict=True)
        ]
    )
    np.testing.assert_allclose(fast_scores, vector_scores, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(fast_flags, vector_scores >= fast.default_threshold)
    for key, array in fast.snapshot().arrays.items():
        np.testing.assert_allclose(array, vector.snapshot().arrays[key], atol=1e-9, err_msg=key)


def test_paths_can_take_over_from_each_other() -> None:
    t, v = noise(900, seed=4)
    whole = series_scores(v, t)
    detector = CalibratedDetector()
    first, _ = detector.process_series(v[:500], t[:500])
    slots = np.zeros(200, dtype=np.intp)
    middle, _ = detector.process_many(slots[:1], v[500:501], t[500:501])
    rest, _ = restore(detector.snapshot()).process_series(v[501:], t[501:])  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.concatenate([first, middle, rest]), whole, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(
    scale=st.floats(min_value=1e-3, max_value=1e4),
    offset=st.floats(min_value=-1e4, max_value=1e4),
    seed=st.integers(0, 50),
)
def test_scores_do_not_depend_on_the_units(scale: float, offset: float, seed: int) -> None:
    t, v = noise(600, seed)
    v[450] += 9.0
    base = series_scores(v, t)
    moved = series_scores(offset + scale * v, t)
    np.testing.assert_allclose(moved, base, atol=1e-6)


def test_one_event_raises_one_alarm_and_a_new_normal_is_adopted() -> None:
    t, v = noise(3000, seed=1)
    v[1500:] += 6.0
    scores = series_scores(v, t)
    flags = np.flatnonzero(scores >= THRESHOLD)
    assert flags.tolist() == [flags[0]]
    assert 1500 <= flags[0] <= 1515
    raw = series_scores(v, t, events=False)
    assert (raw[1500:] >= THRESHOLD).sum() > 1  # without events, every rare reading is reported
    assert (raw[2000:] >= 0.2).sum() == 0  # the new level became normal: learning never locked


def test_a_subtle_level_shift_accumulates_evidence() -> None:
    t, v = noise(4000, seed=2)
    v[2500:] += 1.5  # one and a half standard deviations: no single reading is rare
    scores = series_scores(v, t)
    assert scores[:2500].max() < THRESHOLD
    assert 2500 <= int(np.argmax(scores >= THRESHOLD)) < 2560


def test_a_repeating_pattern_is_learnt_and_its_period_found() -> None:
    s = labelled_series("square_wave", None, seed=0, n=6000)
    detector = CalibratedDetector()
    _, flags = detector.process_series(s.values, s.times_s)
    # On the first day: the first jump of a stream that never moved, and the first long
    # stillness of a stream that has moved, are both new; after it, nothing is.
    assert flags[:288].sum() <= 2
    assert not flags[288:].any()
    assert detector.stream_state()["period_s"] == 86_400.0


def test_irregular_repeated_and_backward_times() -> None:
    t, v = noise(2000, seed=5, step_s=60.0)
    t[500:520] = t[500]  # a burst with one timestamp
    t[900], t[901] = t[901], t[900]  # a late arrival
    t[1200:] += 6 * 3600.0  # a six-hour outage
    scores = series_scores(v, t)
    assert np.all(np.isfinite(scores))
    assert (scores >= THRESHOLD).sum() <= 1
    v2 = v.copy()
    v2[1600] += 12.0
    assert series_scores(v2, t)[1600] >= THRESHOLD


def test_a_constant_stream_that_moves_is_an_alarm_but_never_a_division_by_zero() -> None:
    t = np.asarray(T0 + 60.0 * np.arange(500), dtype=np.float64)
    v = np.full(500, 5.0)
    v[400] = 5.001
    scores = series_scores(v, t)
    assert np.all(np.isfinite(scores))
    assert scores[:400].max() == 0.0
    assert scores[400] >= THRESHOLD


def test_counts_are_judged_as_counts() -> None:
    rng = np.random.default_rng(7)
    t = T0 + 300.0 * np.arange(4000)
    v = (rng.poisson(1.0, 4000) * (rng.random(4000) < 0.2)).astype(np.float64)
    detector = CalibratedDetector()
    _, flags = detector.process_series(v, t)
    assert flags.sum() <= 2
    assert detector.stream_state()["is_count"] == 1.0


def test_protection_does_not_lock_learning() -> None:
    detector = CalibratedDetector()
    t, v = noise(400, seed=8)
    detector.process_series(v, t)
    before = detector.stream_state()["l1"]
    detector.learn_one(500.0, t[-1] + 300.0, protect=True)
    assert detector.stream_state()["l1"] != before


def test_parameters_are_checked() -> None:
    with pytest.raises(DetectorConfigError):
        CalibratedDetector(calm=0.6)
    with pytest.raises(DetectorConfigError):
        CalibratedDetector(period_s=-1.0)
    with pytest.raises(DetectorConfigError):
        CalibratedDetector(memory=1.0)
    with pytest.raises(DetectorConfigError):
        CalibratedDetector().process_series(np.zeros(3), np.zeros(2))


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(min_value=0.0, max_value=1e6), min_size=1, max_size=400))
def test_tail_probabilities_are_probabilities_and_fall_with_the_value(values: list[float]) -> None:
    cfg, state = TailConfig(), tail_init(1.0)
    for value in values:
        state = tail_learn(state, value, cfg)
    grid = [tail_p(state, s, cfg) for s in (0.0, 1.0, 10.0, 1e3, 1e9)]
    assert all(0.0 <= p <= 1.0 for p in grid)
    assert grid == sorted(grid, reverse=True)


def test_backtest_counts_events_as_an_analyst_sees_them() -> None:
    t, v = noise(3000, seed=9)
    v[2000:] += 8.0
    calibrated = backtest(t, v)
    assert calibrated.n_events == calibrated.n_flagged == 1
    z_score = backtest(t, v, "ewma")  # protected: flags every point until it relearns
    assert z_score.n_flagged > z_score.n_events >= 1
