"""The live pollution-shift lane on real-world noise: few alarms on anomaly-free hourly means,
one alarm per sustained rise.

Hourly means of each instrument noise (:mod:`tests.fixtures.noise`), scored through the
vectorised path the live bank uses, with the lane's own detector parameters and threshold,
fed a day of every sensor at a time. Alarms are runs of consecutive flagged hours.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from tests.fixtures.lanes import block_flags
from tests.fixtures.noise import NOISE, alarms, alarms_per_day, regular_times

Array = npt.NDArray[np.float64]
HOUR_S = 3600.0
DAYS = 40
SENSORS = 40
N = DAYS * 24
KINDS = [*sorted(NOISE), "irregular_sampling"]


def flags_of(values: Array, times: Array) -> npt.NDArray[np.bool_]:
    """Flags (hours x sensors), a day of hourly means at a time; NaN values are hours
    without a mean (nothing reported)."""
    return block_flags("pollution_shift", values, times, rows=24)


def hourly(kind: str, seed: int) -> tuple[Array, Array]:
    """Hourly means (hours x sensors) of one noise kind, and their times."""
    rng = np.random.default_rng(seed)
    times = np.repeat(regular_times(N, HOUR_S)[:, None], SENSORS, axis=1)
    if kind == "irregular_sampling":  # hours with no reading, means at shifted times
        values = 50.0 + rng.normal(0.0, 2.0, times.shape)
        values[rng.random(times.shape) < 0.3] = np.nan
        return values, times + rng.uniform(0.0, 600.0, times.shape)
    values = np.stack([NOISE[kind](rng, times[:, 0], HOUR_S) for _ in range(SENSORS)], axis=1)
    return values, times


BOUND: dict[str, float] = {"new_normal_after_maintenance": 0.05}
"""Alarms per sensor-day allowed (0.02 otherwise: one a sensor in 50 days). A service visit
every two days leaves a gain 15 % away (about four noise scales): every other visit is a
sustained rise of the hourly mean, which this lane is for; at most one in five is called."""


@pytest.mark.parametrize("kind", KINDS)
def test_anomaly_free_hourly_means_raise_few_shift_alarms(kind: str) -> None:
    values, times = hourly(kind, 31)
    flags = flags_of(values, times)
    per_day = alarms_per_day(flags, DAYS)
    bound = BOUND.get(kind, 0.02)
    assert per_day.mean() <= bound, f"{kind}: {per_day.mean():.3f} alarms per sensor-day"
    assert per_day.max() <= 0.15, f"{kind}: one sensor had {per_day.max() * DAYS:.0f}"


@pytest.mark.parametrize("kind", ["gaussian", "heavy_tailed", "daily_cycle", "quantised"])
def test_a_sustained_rise_is_found_as_one_alarm(kind: str) -> None:
    values, times = hourly(kind, 32)
    start, stop = N - 5 * 24, N - 3 * 24  # two days of pollution on the sixth-last day
    spread = np.std(np.diff(values[:start, 0])) / np.sqrt(2.0)
    values[start:stop, 0] += 3.0 * spread  # a persistent rise of three noise scales
    flags = flags_of(values, times)
    first = np.flatnonzero(flags[start:stop, 0])
    assert first.size, f"{kind}: the rise was not flagged"
    assert first[0] <= 12, f"{kind}: flagged after {first[0]} h"
    assert alarms(flags[start:, 0]) == 1  # one event, one alarm (its end included)
