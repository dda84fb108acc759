"""The live stuck lane on real-world noise: few alarms on anomaly-free streams, one per fault.

Streams of each instrument noise (:mod:`tests.fixtures.noise`), scored through the vectorised
path the live bank uses, with the lane's own detector parameters and threshold. A stuck
sensor stays flagged while it is stuck (its alert stays open), so alarms are counted as runs
of consecutive flagged readings.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from contract import Quantity
from processing.alerts.lifecycle import Command, Raise
from simulators.signals.noise import AR1, quantise
from tests.fixtures.lanes import block_flags, live_lane
from tests.fixtures.noise import NOISE, alarms, alarms_per_day, irregular_times, regular_times
from tests.processing.test_engine import engine, reading

Array = npt.NDArray[np.float64]
STEP_S = 120.0
DAYS = 4
SENSORS = 40
N = int(DAYS * 86_400 / STEP_S)


def flags_of(values: Array, times: Array) -> npt.NDArray[np.bool_]:
    """Flags (readings x sensors), four hours of every sensor a batch, as a backlog would."""
    return block_flags("stuck", values, times, rows=120)


def streams(kind: str, seed: int) -> tuple[Array, Array]:
    """Values and times (readings x sensors) of one noise kind, or irregular Gaussian ones."""
    rng = np.random.default_rng(seed)
    if kind == "irregular_sampling":
        times = np.stack([irregular_times(rng, N, STEP_S) for _ in range(SENSORS)], axis=1)
        values = np.round(50.0 + rng.normal(0.0, 2.0, times.shape), 1)
        return values, times
    times = np.repeat(regular_times(N, STEP_S)[:, None], SENSORS, axis=1)
    make = NOISE.get(kind, _coarse_slow)
    values = np.stack([make(rng, times[:, 0], STEP_S) for _ in range(SENSORS)], axis=1)
    return values, times


def _coarse_slow(rng: np.random.Generator, times: Array, step_s: float) -> Array:
    """A slow signal at a coarse resolution (PM10 in whole ug/m3 on a still night)."""
    slow = AR1(0.8, 4 * 3600.0, step_s).sample(rng, times.size)
    return quantise(10.0 + slow + rng.normal(0.0, 0.2, times.size), 1.0)


@pytest.mark.parametrize("kind", [*sorted(NOISE), "irregular_sampling", "coarse_slow"])
def test_anomaly_free_noise_raises_few_stuck_alarms(kind: str) -> None:
    values, times = streams(kind, 21)
    flags = flags_of(values, times)
    per_day = alarms_per_day(flags, DAYS)
    assert per_day.mean() <= 0.05, f"{kind}: {per_day.mean():.3f} alarms per sensor-day"
    assert per_day.max() <= 0.25, f"{kind}: one sensor had {per_day.max() * DAYS:.0f}"


@pytest.mark.parametrize("kind", ["gaussian", "heavy_tailed", "quantised", "daily_cycle"])
def test_a_stuck_segment_is_found_as_one_alarm(kind: str) -> None:
    values, times = streams(kind, 22)
    start, stop = N - 400, N - 100  # frozen for ten hours on the last day
    values[start:stop, 0] = values[start - 1, 0]
    flags = flags_of(values, times)
    first = np.flatnonzero(flags[start:stop, 0])
    assert first.size, f"{kind}: the stuck segment was not flagged"
    # within an hour on a noisy sensor; a coarsely quantised one repeats itself for long
    # stretches, so being stuck takes longer to become rare
    limit_s = 3 * 3600.0 if kind == "quantised" else 3600.0
    assert first[0] * STEP_S <= limit_s, f"{kind}: flagged after {first[0] * STEP_S:.0f} s"
    assert flags[start + first[0] : stop, 0].all()  # flagged until it moves again: one alarm
    assert alarms(flags[:, 0]) == 1


def test_a_rain_gauge_sitting_at_zero_for_days_is_not_stuck() -> None:
    rng = np.random.default_rng(23)
    times = regular_times(N, 300.0)
    depth = np.where(rng.random(N) < 0.05, rng.uniform(0.1, 3.0, N), 0.0)
    depth[N // 4 : 3 * N // 4] = 0.0  # two dry days
    detector, _ = live_lane("stuck_zero_ok")
    _, flags = detector.process_many(np.zeros(N, np.intp), depth, times)
    assert not flags.any()


def test_one_stuck_sensor_raises_exactly_one_alert() -> None:
    # Two days of a PM sensor at minute resolution (0.1 ug/m3), then stuck for 90 minutes.
    rng = np.random.default_rng(24)
    minutes = 2 * 24 * 60
    values = np.round(40.0 + np.cumsum(rng.normal(0.0, 0.3, minutes)) * 0.1
                      + rng.normal(0.0, 1.0, minutes), 1)  # fmt: skip
    values[minutes - 120 : minutes - 30] = values[minutes - 121]
    e = engine()
    commands: list[Command] = []
    for start in range(0, minutes, 240):  # four hours of readings at a time
        batch = [
            reading("aq-a", Quantity.PM25, float(values[m]), m)
            for m in range(start, min(start + 240, minutes))
        ]
        commands += e.process(batch).commands
    stuck = [c.alert for c in commands if isinstance(c, Raise) and c.alert.rule == "stuck"]
    assert len(stuck) == 1
    late = stuck[0].observed_at - reading("aq-a", Quantity.PM25, 0.0, minutes - 120).measured_at
    assert late.total_seconds() <= 1800
