"""The live silence lane on real-world reporting: irregular is not silent, an outage is.

Arrival times of each reporting habit (jitter, heavy-tailed delays, whole-minute clocks,
a slower duty cycle at night, a new schedule after a service visit, reporting on change), scored
through the vectorised path the live bank uses, with the lane's own parameters and
threshold. A flagged reading is a gap that was an alarm while it lasted (the silence rule
asks the lane about open gaps with the same statistic); alarms are counted per sensor-day.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from contract import Quantity
from processing.alerts.lifecycle import Command, Raise
from processing.conditions.lanes import SILENCE_LANE
from processing.conditions.silence import SILENT_RULE
from processing.detectors import DropoutDetector, Thresholder
from simulators.signals.noise import student_t
from tests.fixtures.lanes import live_lane
from tests.fixtures.noise import T0, irregular_times, regular_times
from tests.processing.test_engine import T0 as ENGINE_T0
from tests.processing.test_engine import engine, reading

Array = npt.NDArray[np.float64]
STEP_S = 120.0
DAYS = 4
SENSORS = 40
N = int(DAYS * 86_400 / STEP_S)


def lane() -> tuple[DropoutDetector, Thresholder]:
    """The live silence lane's detector and decision rule."""
    detector, thresholder = live_lane(SILENCE_LANE)
    assert isinstance(detector, DropoutDetector)
    return detector, thresholder


def _duty_cycled(rng: np.random.Generator) -> Array:
    """A solar device: every 2 minutes by day, every 10 at night to save its battery."""
    day = regular_times(N, STEP_S)
    hour = (day - T0) / 3600.0 % 24.0
    night = (hour < 6.0) | (hour >= 18.0)
    keep = ~night | (np.round((day - T0) / STEP_S) % 5 == 0)
    return np.asarray(day[keep] + rng.normal(0.0, 2.0, int(keep.sum())), dtype=np.float64)


def _new_schedule(rng: np.random.Generator) -> Array:
    """Every 2 minutes, then every 10 after a service visit on the second day."""
    first = regular_times(int(1.5 * 86_400 / STEP_S), STEP_S)
    later = first[-1] + 600.0 * np.arange(1, int(2.5 * 86_400 / 600.0))
    jitter = rng.normal(0.0, 2.0, first.size + later.size)
    return np.asarray(np.concatenate([first, later]) + jitter, dtype=np.float64)


HABITS: dict[str, Callable[[np.random.Generator], Array]] = {
    "gaussian_jitter": lambda rng: regular_times(N, STEP_S) + rng.normal(0.0, 5.0, N),
    "heavy_tailed_delays": lambda rng: np.sort(
        regular_times(N, STEP_S) + np.abs(student_t(rng, N, 40.0))
    ),
    "quantised_clock": lambda rng: np.floor(regular_times(N, 90.0) / 60.0) * 60.0,
    "duty_cycled": _duty_cycled,
    "new_schedule_after_maintenance": _new_schedule,
    "irregular_on_change": lambda rng: irregular_times(rng, N, STEP_S),
}


def alarms_of(habit: Callable[[np.random.Generator], Array], seed: int) -> Array:
    """Alarms per sensor of one habit's arrival times, fed as the live bank feeds batches."""
    rng = np.random.default_rng(seed)
    detector, thresholder = lane()
    times = [np.sort(habit(rng)) for _ in range(SENSORS)]
    slots = np.concatenate([np.full(t.size, j, np.intp) for j, t in enumerate(times)])
    when = np.concatenate(times)
    order = np.argsort(when, kind="stable")
    slots, when = slots[order], when[order]
    counts = np.zeros(SENSORS)
    edges = np.searchsorted(when, np.arange(when[0], when[-1] + 4 * 3600.0, 4 * 3600.0))
    for start, stop in itertools.pairwise(edges):  # four hours at a time
        _, flags = detector.process_many(slots[start:stop], np.ones(stop - start),
                                         when[start:stop], thresholder)  # fmt: skip
        np.add.at(counts, slots[start:stop][flags], 1.0)
    return counts


@pytest.mark.parametrize("kind", sorted(HABITS))
def test_reporting_habits_without_outages_raise_few_silences(kind: str) -> None:
    counts = alarms_of(HABITS[kind], 41)
    per_day = counts / DAYS
    assert per_day.mean() <= 0.05, f"{kind}: {per_day.mean():.3f} silences per sensor-day"
    assert per_day.max() <= 0.5, f"{kind}: one sensor had {counts.max():.0f}"


def called_after(detector: DropoutDetector, slot: int, last_s: float, threshold: float) -> float:
    """Seconds after ``last_s`` at which the open gap of ``slot`` is first called a silence."""
    waits = 60.0 * np.arange(1, 24 * 60)
    scores = np.array([detector.score_silence(last_s + w, [slot])[0] for w in waits])
    hit = np.flatnonzero(scores >= threshold)
    return float(waits[hit[0]]) if hit.size else np.inf


@pytest.mark.parametrize(
    ("kind", "within_s"),
    [
        ("gaussian_jitter", 1200.0),
        ("quantised_clock", 1200.0),
        ("duty_cycled", 3600.0),
        ("irregular_on_change", 3600.0),
    ],
)
def test_an_outage_is_called_once_and_in_time(kind: str, within_s: float) -> None:
    rng = np.random.default_rng(42)
    detector, thresholder = lane()
    times = np.sort(HABITS[kind](rng))
    cut = np.searchsorted(times, times[-1] - 6 * 3600.0)  # three hours dead, on day four
    times = np.concatenate([times[:cut], times[cut:][times[cut:] > times[cut] + 3 * 3600.0]])
    slots = np.zeros(times.size, np.intp)
    _, before = detector.process_many(slots[:cut], np.ones(cut), times[:cut], thresholder)
    waited = called_after(detector, 0, float(times[cut - 1]), thresholder.threshold)
    _, after = detector.process_many(slots[cut:], np.ones(times.size - cut), times[cut:],
                                     thresholder)  # fmt: skip
    assert waited <= within_s, f"{kind}: called after {waited:.0f} s"
    assert after[0]  # the reading that ends the outage ends one alarm
    assert before.sum() + after.sum() <= 2  # and nothing much else in four days


def test_an_irregular_reporter_is_not_silent_but_a_dead_one_is_once() -> None:
    # A rain gauge that reports on change (gaps of two minutes on average, often ten), next
    # to a PM sensor every minute; after two days the gauge dies for three hours.
    rng = np.random.default_rng(43)
    gauge = (irregular_times(rng, 3000, STEP_S) - T0) / 60.0  # minutes from the start
    gauge = gauge[gauge < 2 * 24 * 60]
    gauge = gauge[(gauge < 44 * 60) | (gauge > 47 * 60)]
    e = engine()
    commands: list[Command] = []
    for start in range(0, 2 * 24 * 60, 120):  # two hours of readings at a time
        batch = [reading("aq-a", Quantity.PM25, 40.0 + m % 3, m) for m in range(start, start + 120)]
        batch += [reading("rg-a", Quantity.RAINFALL, 0.0, float(m))
                  for m in gauge[(gauge >= start) & (gauge < start + 120)]]  # fmt: skip
        batch.sort(key=lambda r: r.measured_at)
        commands += e.process(batch).commands
    silent = [c.alert for c in commands if isinstance(c, Raise) and c.alert.rule == SILENT_RULE]
    assert [a.station_id for a in silent] == ["rg-a"]
    late_min = (silent[0].observed_at - ENGINE_T0).total_seconds() / 60.0 - 44 * 60
    assert 0.0 < late_min <= 60.0
