"""What each detector is for: synthetic events it must catch early, and normal days it must not."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pytest

from contract import Quantity, Reading, StationId
from processing.detectors import (
    CusumDetector,
    DropoutDetector,
    FlatlineDetector,
    OxygenRiskDetector,
    ParamValue,
    RateOfRiseDetector,
    SpatialDetector,
    make_detector,
)
from processing.errors import DetectorConfigError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
T0 = 1_790_000_000.0  # a Monday 2026-09-21 ... any fixed start will do
DAY_S = 86400.0


def one_sensor(
    name: str, times: npt.ArrayLike, values: npt.ArrayLike, **params: ParamValue
) -> BoolArray:
    """Flags of a single-sensor stream processed with the detector's default thresholder."""
    detector = make_detector(name, **params)
    t = np.asarray(times, dtype=np.float64)
    _, flags = detector.process_many(np.zeros(t.size, dtype=np.intp), values, t)
    return flags


def first_flag(flags: BoolArray, start: int) -> int | None:
    hits = np.flatnonzero(flags[start:])
    return int(hits[0]) if hits.size else None


# --- flooding: rate of rise ----------------------------------------------------------------


def street_depth(seed: int, event_at: int, n: int) -> FloatArray:
    """Depth (cm) at one-minute steps: a dry street with sensor noise, then a flash flood."""
    rng = np.random.default_rng(seed)
    depth = np.clip(rng.normal(0.5, 0.3, n), 0.0, None)
    glitches = rng.choice(event_at, size=6, replace=False)
    depth[glitches] += rng.uniform(5.0, 15.0, glitches.size)  # isolated spikes are not floods
    rise = np.arange(n - event_at) * rng.uniform(1.0, 3.0)
    depth[event_at:] += np.minimum(rise, 45.0)
    return depth


def test_rate_of_rise_catches_flash_floods_within_two_samples() -> None:
    n, event_at, streets = 2 * 1440, 2 * 1440 - 60, 6
    depth = np.stack([street_depth(seed, event_at, n) for seed in range(streets)], axis=1)
    times = np.repeat(T0 + 60.0 * np.arange(n), streets)
    slots = np.tile(np.arange(streets), n)
    _, flags = make_detector("rate_of_rise").process_many(slots, depth.ravel(), times)
    flags = flags.reshape(n, streets)
    assert flags[:event_at].sum() <= 2  # two dry days per street with isolated glitches
    for street in range(streets):
        delay = first_flag(flags[:, street], event_at + 1)  # water rises from event_at + 1
        assert delay is not None
        assert delay <= 2


def test_rate_of_rise_direction_fall() -> None:
    times = T0 + 300.0 * np.arange(400)
    values = 8.0 + 0.1 * np.sin(np.arange(400) / 10.0)
    values[380:] -= 0.5 * np.arange(20)
    flags = one_sensor("rate_of_rise", times, values, direction="fall")
    assert not flags[:380].any()
    assert flags[380:].any()
    with pytest.raises(DetectorConfigError):
        RateOfRiseDetector(direction="sideways")  # type: ignore[arg-type]


# --- West Lake oxygen -----------------------------------------------------------------------


def lake_do(
    seed: int, days: int, crash: bool, low: float = 2.5
) -> tuple[FloatArray, FloatArray, int]:
    """DO (mg/L) every 15 min: afternoon peak, pre-dawn minimum; optionally a crash night.

    Returns times, DO and the index where the crash starts (the series length without one).
    """
    rng = np.random.default_rng(seed)
    t = T0 + 900.0 * np.arange(int(days * 96))
    hour = ((t + 7 * 3600) / 3600.0) % 24
    day = ((t + 7 * 3600) // DAY_S).astype(int) - int((T0 + 7 * 3600) // DAY_S)
    minima = low + 1.5 * rng.random(days + 2)
    maxima = 9.0 + 5.0 * rng.random(days + 2)
    rising = (hour >= 5) & (hour < 16)
    frac = np.where(rising, (hour - 5) / 11, ((hour - 16) % 24) / 13)
    shape = np.where(rising, 0.5 - 0.5 * np.cos(np.pi * frac), 0.5 + 0.5 * np.cos(np.pi * frac))
    bottom = np.where(hour >= 16, minima[day + 1], minima[day])
    do = bottom + (maxima[day] - bottom) * shape + rng.normal(0.0, 0.25, t.size)
    start = t.size
    if crash:  # the last night: respiration after a bloom collapse drives DO to ~0.5 mg/L
        start = int(np.flatnonzero((day == days - 2) & (hour >= 20))[0])
        progress = np.clip(np.arange(t.size - start) / 32.0, 0.0, 1.0)
        do[start:] = do[start:] * (1 - progress) + 0.5 * progress
    return np.asarray(t, np.float64), np.asarray(np.clip(do, 0.0, None), np.float64), start


@pytest.mark.parametrize("seed", range(4))
def test_oxygen_risk_warns_before_do_falls_below_two(seed: int) -> None:
    t, do, crash_at = lake_do(seed, days=14, crash=True)
    flags = one_sensor("oxygen_risk", t, do)
    assert not flags[96 * 3 : crash_at].any()  # eleven normal nights after a 3-day warm-up
    first_below = crash_at + int(np.flatnonzero(do[crash_at:] < 2.0)[0])
    warning = first_flag(flags, crash_at)
    assert warning is not None
    assert crash_at + warning < first_below  # warned before DO falls below 2 mg/L


def test_oxygen_risk_normal_nights_stay_quiet() -> None:
    t, do, _ = lake_do(7, days=14, crash=False, low=2.6)
    flags = one_sensor("oxygen_risk", t, do)
    assert flags[96 * 3 :].mean() < 0.002


def test_oxygen_context_bloom_and_readings() -> None:
    detector = OxygenRiskDetector()
    at = datetime.fromtimestamp(T0, UTC)
    chl = Reading(StationId("wq-tay-ho"), Quantity.CHLOROPHYLL_A, 160.0, at, at)
    assert detector.score_one(chl) == 0.0  # context readings only inform
    before = detector.components(np.array([0]), np.array([2.3]), np.array([T0]))
    detector.learn_one(chl)
    detector.update_context(np.array([0]), Quantity.WATER_TEMPERATURE, [31.0], [T0])
    after = detector.components(np.array([0]), np.array([2.3]), np.array([T0]))
    assert after["gate"][0] >= before["gate"][0]
    assert after["saturation_pct"][0] == pytest.approx(100 * 2.3 / 7.30, abs=0.5)
    with pytest.raises(DetectorConfigError):
        detector.update_context(np.array([0]), Quantity.PM25, [1.0], [T0])
    with pytest.raises(DetectorConfigError):
        make_detector("ewma").update_context(np.array([0]), Quantity.PH, [7.0], [T0])


# --- pollution episodes: seasonal baseline and CUSUM ----------------------------------------


def pm25_days(seed: int, days: int, episode_at: int | None) -> tuple[FloatArray, FloatArray]:
    """PM2.5 every 5 minutes with a daily cycle; an episode multiplies it from ``episode_at``."""
    rng = np.random.default_rng(seed)
    t = T0 + 300.0 * np.arange(days * 288)
    hour = ((t + 7 * 3600) / 3600.0) % 24
    cycle = 45.0 * (1.0 + 0.3 * np.cos(2 * np.pi * (hour - 7) / 24))
    values = cycle * rng.lognormal(0.0, 0.08, t.size)
    if episode_at is not None:
        ramp = np.clip(np.arange(t.size - episode_at) / 24.0, 0.0, 1.0)  # builds over 2 h
        values[episode_at:] *= 1.0 + 1.5 * ramp
    return np.asarray(t, np.float64), np.asarray(values, np.float64)


@pytest.mark.parametrize("name", ["seasonal_mad", "cusum"])
def test_pollution_episode_is_caught_and_normal_days_are_quiet(name: str) -> None:
    episode_at = 10 * 288 + 100
    t, values = pm25_days(3, 12, episode_at)
    flags = one_sensor(name, t, values)
    assert flags[288 * 2 : episode_at].mean() < 0.002
    delay = first_flag(flags, episode_at)
    assert delay is not None
    assert delay <= 24  # within the two-hour build-up


def test_cusum_finds_a_small_shift_that_a_z_score_misses() -> None:
    rng = np.random.default_rng(4)
    t = T0 + 60.0 * np.arange(3000)
    values = rng.normal(0.0, 1.0, t.size)
    values[2500:] += 1.0
    cusum = one_sensor("cusum", t, values, daily=False)
    ewma = one_sensor("ewma", t, values)
    found = first_flag(cusum, 2500)
    assert found is not None
    assert found <= 60  # one alarm for the shift (one event, one alarm), within an hour
    assert not ewma[2500 : 2500 + found + 1].any()  # a z-score has not seen it by then
    assert not cusum[100:2500].any()
    assert CusumDetector(daily=False).snapshot().arrays["bin_n"].shape == (0, 1)


# --- sensor health ------------------------------------------------------------------------


def test_flatline_stuck_sensor_and_exempt_value() -> None:
    rng = np.random.default_rng(5)
    t = T0 + 60.0 * np.arange(600)
    values = np.round(20 + rng.normal(0, 0.5, t.size), 2)
    values[500:] = values[499]
    flags = one_sensor("flatline", t, values)
    assert not flags[:500].any()
    delay = first_flag(flags, 500)
    assert delay is not None
    assert delay <= 6
    rain = np.where(rng.random(t.size) < 0.9, 0.0, rng.uniform(0.2, 3.0, t.size))
    rain[100:400] = 0.0
    assert not one_sensor("flatline", t, rain, exempt_value=0.0).any()
    quantised = np.round(rng.normal(5, 0.6, t.size))  # integers: repeats are common
    assert one_sensor("flatline", t, quantised).mean() < 0.01
    with pytest.raises(DetectorConfigError):
        FlatlineDetector(min_still=0.0)


def test_dropout_gap_and_silence() -> None:
    detector = DropoutDetector(interval_s=60.0)
    t = T0 + 60.0 * np.arange(400)
    detector.learn_many(np.zeros(400, np.intp), np.ones(400), t)
    detector.learn_many([1], [1.0], [t[-1]])
    assert detector.score_one(1.0, t[-1] + 60.0) == 0.0
    assert detector.score_one(1.0, t[-1] + 60.0 * 3) < 0.4
    assert detector.score_one(1.0, t[-1] + 60.0 * 12) >= 0.4
    silence = detector.score_silence(t[-1] + 600.0)
    assert silence.shape == (detector.capacity,)
    assert silence[0] >= 0.4  # ten intervals missed after 400 regular ones
    assert silence[1] == 0.0  # one reading: no gap known, nothing to call rare
    learned = DropoutDetector()
    t = T0 + 300.0 * np.arange(400) + np.random.default_rng(0).uniform(-20, 20, 400)
    learned.learn_many(np.zeros(400, dtype=np.intp), np.ones(400), t)
    assert learned.score_silence(t[-1] + 300.0)[0] < 0.1
    assert learned.score_silence(t[-1] + 300.0 * 10)[0] >= 0.4


def test_spike_accepts_a_step_after_relearn() -> None:
    t = T0 + 60.0 * np.arange(300)
    values = 10.0 + 0.1 * np.sin(np.arange(300.0))
    values[150] = 30.0
    values[200:] += 20.0
    flags = one_sensor("spike", t, values)
    assert flags[150]
    assert not flags[151:200].any()
    assert 1 <= flags[200:].sum() <= 8  # the step is accepted after a few readings


def neighbours(n_sensors: int = 6) -> SpatialDetector:
    detector = SpatialDetector()
    slots = np.arange(n_sensors)
    detector.set_positions(slots, 21.0 + 0.005 * slots, 105.8 + 0.004 * (slots % 2))
    return detector


def test_spatial_drift_of_one_sensor_is_flagged_but_citywide_changes_are_not() -> None:
    rng = np.random.default_rng(6)
    steps, n = 600, 6
    t = T0 + 300.0 * np.repeat(np.arange(steps), n)
    slots = np.tile(np.arange(n), steps)
    common = 40 + 20 * np.sin(np.arange(steps) / 50.0)  # the whole city goes up and down
    common[400:] += 60.0  # a city-wide episode: not a sensor fault
    values = np.repeat(common, n) + 2.0 * slots + rng.normal(0, 1.0, steps * n)
    drift = np.clip((np.arange(steps) - 450) * 0.2, 0, None)  # sensor 3 drifts from step 450
    values[slots == 3] += drift
    _, flags = neighbours(n).process_many(slots, values, t)
    flags = flags.reshape(steps, n)
    assert not flags[20:450].any()
    assert flags[450:, 3].any()
    assert not flags[450:, [0, 1, 2, 4, 5]].any()
    first = int(np.flatnonzero(flags[:, 3])[0])
    assert drift[first] < 10.0  # caught while the offset is still small
