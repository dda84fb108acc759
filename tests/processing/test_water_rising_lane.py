"""The live water-rising lane on real-world noise: few alarms on anomaly-free depth streams,
one alarm per street flooding, however many floods came before.

Depth streams of each instrument noise (:mod:`tests.fixtures.noise`) and of a dry street,
scored through the vectorised path the live bank uses, with the lane's own detector
parameters and threshold, fed four hours of every sensor at a time. Alarms are runs of
consecutive flagged readings (an event stays flagged while the water rises).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from processing.conditions.lanes import PROFILES
from tests.fixtures.lanes import block_flags
from tests.fixtures.noise import NOISE, alarms, alarms_per_day, irregular_times, regular_times

Array = npt.NDArray[np.float64]
STEP_S = 120.0
DAYS = 4
SENSORS = 40
N = int(DAYS * 86_400 / STEP_S)
MIN_DEPTH_CM = PROFILES["water_rising"].min_value or 0.0


def flags_of(values: Array, times: Array) -> npt.NDArray[np.bool_]:
    """Flags (readings x sensors), four hours of every sensor a batch, as a backlog would."""
    return block_flags("water_rising", values, times, rows=120)


def dry_street(rng: np.random.Generator, size: int) -> Array:
    """Depth (cm) of a dry street: 0 mostly, a sensor's small noise, whole millimetres."""
    wet = rng.random(size) < 0.2
    return np.asarray(np.round(np.where(wet, rng.exponential(0.4, size), 0.0), 1), np.float64)


def streams(kind: str, seed: int) -> tuple[Array, Array]:
    """Values and times (readings x sensors) of one noise kind."""
    rng = np.random.default_rng(seed)
    if kind == "irregular_sampling":
        times = np.stack([irregular_times(rng, N, STEP_S) for _ in range(SENSORS)], axis=1)
        return np.round(20.0 + rng.normal(0.0, 0.5, times.shape), 1), times
    times = np.repeat(regular_times(N, STEP_S)[:, None], SENSORS, axis=1)
    if kind == "dry_street":
        return np.stack([dry_street(rng, N) for _ in range(SENSORS)], axis=1), times
    values = np.stack([NOISE[kind](rng, times[:, 0], STEP_S) for _ in range(SENSORS)], axis=1)
    return values, times


def flood(values: Array, at: int, rate_cm_h: float, peak_cm: float = 40.0) -> None:
    """Water rising at ``rate_cm_h`` from reading ``at`` up to ``peak_cm``, then receding."""
    hours = STEP_S * np.arange(values.size - at) / 3600.0
    rise = np.minimum(rate_cm_h * hours, peak_cm)
    top = peak_cm / rate_cm_h
    water = np.where(hours <= top, rise, np.maximum(peak_cm - 10.0 * (hours - top), 0.0))
    values[at:] += water


BOUND: dict[str, float] = {"new_normal_after_maintenance": 0.1, "irregular_sampling": 0.1}
"""Alarms per sensor-day allowed (0.02 otherwise: one a sensor in 50 days). A service visit
(every two days here) leaves a gain step of 6-17 units in one reading, which no rate can tell
from a surge; readings in bursts seconds apart (exponential gaps) make steep slopes of noise."""


@pytest.mark.parametrize("kind", [*sorted(NOISE), "dry_street", "irregular_sampling"])
def test_anomaly_free_streams_raise_few_rising_alarms(kind: str) -> None:
    values, times = streams(kind, 41)
    flags = flags_of(values, times)
    per_day = alarms_per_day(flags, DAYS)
    bound = BOUND.get(kind, 0.02)
    assert per_day.mean() <= bound, f"{kind}: {per_day.mean():.3f} alarms per sensor-day"
    assert per_day.max() <= 0.75, f"{kind}: one sensor had {per_day.max() * DAYS:.0f}"


@pytest.mark.parametrize("rate_cm_h", [20.0, 60.0, 150.0])
def test_a_street_flooding_is_one_alarm_found_early(rate_cm_h: float) -> None:
    values, times = streams("dry_street", 42)
    at = N - 200
    flood(values[:, 0], at, rate_cm_h)
    flags = flags_of(values, times)
    # the water-rising alert needs a flagged reading with water standing on the street
    alerting = np.flatnonzero(flags[at:, 0] & (values[at:, 0] >= MIN_DEPTH_CM))
    assert alerting.size, f"{rate_cm_h} cm/h: not flagged with water on the street"
    depth = values[at + alerting[0], 0]
    assert depth <= 15.0, f"{rate_cm_h} cm/h: flagged at {depth:.1f} cm"
    assert alarms(flags[:, 0]) == 1


def test_floods_every_day_stay_rare_one_alarm_each() -> None:
    values, times = streams("dry_street", 43)
    starts = [int((day + 0.5) * 86_400 / STEP_S) for day in range(DAYS)]
    for at in starts:
        flood(values[at : at + 300, 0], 0, 40.0)
    flags = flags_of(values, times)
    for at in starts[1:]:  # the first comes on a calibration hours old
        assert flags[at : at + 30, 0].any(), f"the flood at reading {at} was not flagged"
        assert alarms(flags[at : at + 300, 0]) == 1
