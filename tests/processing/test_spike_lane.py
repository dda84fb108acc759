"""The live spike lane on real-world noise: few alerts on anomaly-free streams, one per spike.

The streams are made with the simulator's instrument noise (heavy tails, quantisation,
zero-inflated counts, a new normal after maintenance), scored through the vectorised path
the live bank uses, with the lane's own detector parameters and threshold.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from contract import Quantity
from processing.alerts.lifecycle import Command, Raise
from processing.conditions.lanes import SPIKE_LANE
from simulators.signals.noise import quantise, student_t
from tests.fixtures.lanes import live_lane
from tests.fixtures.noise import NOISE as KINDS
from tests.fixtures.noise import Noise
from tests.processing.test_engine import engine, reading

Array = npt.NDArray[np.float64]
T0 = 1_790_000_000.0
STEP_S = 120.0
DAYS = 3
SENSORS = 40
N = int(DAYS * 86_400 / STEP_S)


def _times() -> Array:
    return np.asarray(T0 + STEP_S * np.arange(N), dtype=np.float64)


def _on_lane_times(make: Noise) -> Callable[[np.random.Generator], Array]:
    return lambda rng: make(rng, _times(), STEP_S)


NOISE: dict[str, Callable[[np.random.Generator], Array]] = {
    kind: _on_lane_times(make) for kind, make in KINDS.items()
}


def flags_per_sensor(values: Array) -> Array:
    """Flags of each sensor (columns of ``values``), fed as the live bank feeds batches."""
    detector, thresholder = live_lane(SPIKE_LANE)
    sensors = values.shape[1]
    times = _times()
    counts = np.zeros(sensors)
    rows = 240  # a batch holds four hours of every sensor, as a backlog would
    for start in range(0, N, rows):
        block = values[start : start + rows]
        slots = np.tile(np.arange(sensors), block.shape[0])
        when = np.repeat(times[start : start + rows], sensors)
        _, flags = detector.process_many(slots, block.reshape(-1), when, thresholder)
        np.add.at(counts, slots[flags], 1.0)
    return counts


@pytest.mark.parametrize("kind", sorted(NOISE))
def test_anomaly_free_noise_raises_few_spikes(kind: str) -> None:
    rng = np.random.default_rng(11)
    values = np.stack([NOISE[kind](rng) for _ in range(SENSORS)], axis=1)
    counts = flags_per_sensor(values)
    per_day = counts / DAYS
    assert per_day.mean() <= 0.2, f"{kind}: {per_day.mean():.2f} spikes per sensor-day"
    assert per_day.max() <= 1.0, f"{kind}: one sensor had {counts.max():.0f} in {DAYS} days"


def test_a_burst_of_glitches_is_one_alarm_and_learning_goes_on() -> None:
    detector, thresholder = live_lane(SPIKE_LANE)
    rng = np.random.default_rng(5)
    times = _times()
    values = 50.0 + rng.normal(0.0, 2.0, N)
    values[1500:1504] += np.array([300.0, -250.0, 280.0, 310.0])  # one event, four glitches
    values[1800] += 300.0  # a later, separate spike
    _, flags = detector.process_many(np.zeros(N, np.intp), values, times, thresholder)
    assert np.flatnonzero(flags).tolist() == [1500, 1800]


def test_a_new_normal_is_learnt_not_flagged_for_ever() -> None:
    detector, thresholder = live_lane(SPIKE_LANE)
    rng = np.random.default_rng(6)
    values = 50.0 + rng.normal(0.0, 2.0, N)
    values[1500:] += 60.0  # recalibrated at a service visit
    _, flags = detector.process_many(np.zeros(N, np.intp), values, _times(), thresholder)
    assert flags[1500:1510].sum() <= 1  # at most the step itself
    assert not flags[1510:].any()


def test_time_is_in_seconds_gaps_and_backward_timestamps() -> None:
    detector, thresholder = live_lane(SPIKE_LANE)
    rng = np.random.default_rng(8)
    times = _times()[:600]
    values = 20.0 + rng.normal(0.0, 1.0, 600)
    times[300:] += 6 * 3600.0  # six hours silent, then a new level: nothing to compare with
    values[300:] += 15.0
    times[450] = times[449]  # a repeated timestamp
    times[451] = times[449] - 600.0  # a late reading
    _, flags = detector.process_many(np.zeros(600, np.intp), values, times, thresholder)
    assert not flags.any()


def test_one_injected_spike_raises_exactly_one_alert() -> None:
    # A day of a low-cost PM sensor: heavy-tailed noise, whole ug/m3, then one glitch.
    rng = np.random.default_rng(3)
    minutes = 24 * 60
    noise = quantise(40.0 + student_t(rng, minutes, 2.0), 1.0)
    noise[minutes - 60] += 250.0
    e = engine()
    commands: list[Command] = []
    for start in range(0, minutes, 120):  # two hours of readings at a time
        batch = [
            reading("aq-a", Quantity.PM25, float(noise[m]), m)
            for m in range(start, min(start + 120, minutes))
        ]
        commands += e.process(batch).commands
    spikes = [c.alert for c in commands if isinstance(c, Raise) and c.alert.rule == SPIKE_LANE]
    assert len(spikes) == 1
    assert spikes[0].observed_at == reading("aq-a", Quantity.PM25, 0.0, minutes - 60).measured_at
