"""The live neighbours lane on real-world noise: few alarms when sensors agree, one per drift.

Forty PM sensors on a 1 km grid share the city's level (a daily cycle and a slow synoptic
wander) times their own site factor, each with its own instrument noise
(:mod:`tests.fixtures.noise`), scored through the vectorised path the live bank uses with the
lane's own parameters and threshold. A drift stays flagged while it lasts (its alert stays
open), so alarms are counted as runs of consecutive flagged readings.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from processing.detectors import SpatialDetector, Thresholder
from simulators.signals.noise import AR1, quantise, zero_inflate
from tests.fixtures.lanes import live_lane
from tests.fixtures.noise import NOISE, alarms, alarms_per_day, irregular_times, regular_times

Array = npt.NDArray[np.float64]
STEP_S = 300.0
DAYS = 6
SIDE = 5
SENSORS = SIDE * SIDE
N = int(DAYS * 86_400 / STEP_S)


def lane() -> tuple[SpatialDetector, Thresholder]:
    """The live neighbours lane's detector on a 1 km grid, and its decision rule."""
    detector, thresholder = live_lane("neighbours")
    assert isinstance(detector, SpatialDetector)
    slots = np.arange(SENSORS)
    detector.set_positions(slots, 21.0 + 0.009 * (slots // SIDE), 105.8 + 0.0096 * (slots % SIDE))
    return detector, thresholder


def city(rng: np.random.Generator, times: Array) -> Array:
    """The level every site shares: a daily cycle and a slow synoptic wander."""
    daily = 1.0 + 0.3 * np.cos(2 * np.pi * (times / 86_400.0 - 0.2))
    return np.asarray(daily * np.exp(AR1(0.3, 86_400.0, STEP_S).sample(rng, times.size)))


_MEAN = {"gaussian": 50.0, "heavy_tailed": 50.0, "quantised": 12.0, "daily_cycle": 30.0,
         "new_normal_after_maintenance": 40.0}  # fmt: skip
"""Each noise kind's nominal level: its stream divided by it is a relative noise."""


def streams(kind: str, seed: int) -> tuple[Array, Array]:
    """Values and times (readings x sensors): the city's level x a site factor x noise."""
    rng = np.random.default_rng(seed)
    times = regular_times(N, STEP_S)
    level = city(rng, times)
    site = np.exp(rng.normal(0.0, 0.2, SENSORS))
    when = np.repeat(times[:, None], SENSORS, axis=1)
    if kind == "irregular_sampling":  # each sensor's own clock, the city read at its times
        when = np.stack([irregular_times(rng, N, STEP_S) for _ in range(SENSORS)], axis=1)
        shared = np.stack([np.interp(when[:, j], times, level) for j in range(SENSORS)], axis=1)
        return 40.0 * shared * site * (1.0 + rng.normal(0.0, 0.04, when.shape)), when
    truth = 40.0 * level[:, None] * site
    if kind == "zero_inflated_counts":  # counts of a level, a share of intervals missed
        counts = rng.poisson(truth / 10.0).astype(np.float64)
        return np.stack([zero_inflate(rng, c, 0.1) for c in counts.T], axis=1), when
    columns = np.stack([NOISE[kind](rng, times, STEP_S) for _ in range(SENSORS)], axis=1)
    values = truth * columns / _MEAN[kind]
    if kind == "quantised":
        values = quantise(values, 1.0)
    return np.maximum(values, 0.0), when


def flags_of(values: Array, times: Array) -> npt.NDArray[np.bool_]:
    """Flags (readings x sensors), fed as the live bank feeds batches (in time order)."""
    detector, thresholder = lane()
    out = np.zeros(values.shape, dtype=bool)
    slots = np.tile(np.arange(SENSORS), values.shape[0])
    flat_t, flat_v = times.reshape(-1), values.reshape(-1)
    order = np.argsort(flat_t, kind="stable")
    rows = 48 * SENSORS  # a batch holds four hours of every sensor
    flat = np.zeros(flat_t.size, dtype=bool)
    for start in range(0, order.size, rows):
        chosen = order[start : start + rows]
        _, flags = detector.process_many(slots[chosen], flat_v[chosen], flat_t[chosen],
                                         thresholder)  # fmt: skip
        flat[chosen] = flags
    out[:] = flat.reshape(values.shape)
    return out


@pytest.mark.parametrize("kind", [*sorted(NOISE), "irregular_sampling"])
def test_anomaly_free_neighbours_raise_few_drift_alarms(kind: str) -> None:
    values, times = streams(kind, 31)
    flags = flags_of(values, times)
    per_day = alarms_per_day(flags, DAYS)
    # a maintenance visit leaves a sensor a new gain: a real change against its neighbours,
    # raised at most once per visit (visits come every two days) and then adopted
    bound = 0.25 if kind == "new_normal_after_maintenance" else 0.05
    assert per_day.mean() <= bound, f"{kind}: {per_day.mean():.3f} alarms per sensor-day"
    assert per_day.max() <= 0.5, f"{kind}: one sensor had {per_day.max() * DAYS:.0f}"


@pytest.mark.parametrize(("kind", "found_by"), [("gaussian", 0.2), ("daily_cycle", 0.25)])
def test_a_slow_drift_is_found_once_and_one_wild_reading_is_not(kind: str, found_by: float) -> None:
    # (A sensor that wanders on its own for hours, heavy_tailed here, learns a wide tail: in
    # its first week a drift must pass about 70 % to be that rare; not asserted.)
    values, times = streams(kind, 32)
    start = N - 576  # the last two days: sensor 12 (mid-grid) drifts up 1.5 % an hour
    ramp = np.clip((times[:, 12] - times[start, 12]) / 3600.0, 0.0, None) * 0.015
    values[:, 12] *= 1.0 + ramp
    values[start - 300, 7] *= 6.0  # and one wild reading of another sensor, earlier
    flags = flags_of(values, times)
    first = np.flatnonzero(flags[start:, 12])
    assert first.size, f"{kind}: the drift was not found"
    assert ramp[start + first[0]] <= found_by, f"{kind}: found at +{ramp[start + first[0]]:.0%}"
    assert alarms(flags[start:, 12]) == 1
    assert not flags[start - 300 : start - 250, 7].any()
