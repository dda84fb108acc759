"""Statistical checks of the signal models against the reference (domain.md)."""

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import Quantity
from simulators.signals.cycles import local_hour, rush_profile
from simulators.signals.flood import FloodDepthModel, RainGaugeModel
from simulators.signals.noise import AR1
from simulators.signals.water import BuoyModel, LakeDrivers, do_saturation
from tests.simulators.helpers import hourly_profile, run_scenario

JULY = datetime(2025, 7, 7, tzinfo=UTC).timestamp()
JANUARY = datetime(2025, 1, 6, tzinfo=UTC).timestamp()


def test_pm25_peaks_in_the_early_morning_and_bottoms_out_mid_afternoon() -> None:
    _, _, out = run_scenario("quiet-week", ["aq-kim-lien", "aq-tay-mo"], hours=24 * 7)
    for station in ("aq-kim-lien", "aq-tay-mo"):
        profile = hourly_profile(
            out.times(station, Quantity.PM25), out.values(station, Quantity.PM25)
        )
        # domain.md §5.3: higher 02:00–08:00 (rush-hour peak), minimum 14:00–15:00
        assert 2 <= int(np.argmax(profile)) <= 8, profile.round(1)
        assert 12 <= int(np.argmin(profile)) <= 16, profile.round(1)
        assert profile[2:9].mean() > 1.5 * profile[13:16].mean()


def test_gases_follow_traffic_and_ozone_follows_the_sun() -> None:
    _, _, out = run_scenario("quiet-week", ["aq-hoan-kiem"], hours=24 * 5)
    t = out.times("aq-hoan-kiem", Quantity.NO2)
    no2 = hourly_profile(t, out.values("aq-hoan-kiem", Quantity.NO2))
    o3 = hourly_profile(t, out.values("aq-hoan-kiem", Quantity.O3))
    assert no2[7:9].mean() > 1.5 * no2[2:4].mean()  # rush hour vs night
    assert 11 <= int(np.argmax(o3)) <= 16
    pm25 = out.values("aq-hoan-kiem", Quantity.PM25)
    pm10 = out.values("aq-hoan-kiem", Quantity.PM10)
    ratio = np.median(pm25 / pm10)
    assert 0.55 < ratio < 0.85


def test_traffic_rush_hours_slow_the_corridor_and_motorbikes_dominate() -> None:
    _, _, out = run_scenario("traffic-incident", ["tr-giai-phong-2"], hours=6)
    t = out.times("tr-giai-phong-2", Quantity.SPEED)
    speed = out.values("tr-giai-phong-2", Quantity.SPEED)
    hour = local_hour(t)
    assert speed[(hour >= 7.5) & (hour < 8.5)].mean() < 0.6 * speed[hour < 5.8].mean()
    bikes = out.values("tr-giai-phong-2", Quantity.FLOW_MOTORBIKE).sum()
    cars = out.values("tr-giai-phong-2", Quantity.FLOW_CAR).sum()
    assert bikes / (bikes + cars) > 0.8


def test_weekday_rush_is_stronger_than_sunday_morning() -> None:
    monday_8 = datetime(2025, 3, 10, 1, tzinfo=UTC).timestamp()  # 08:00 in Hanoi
    sunday_8 = datetime(2025, 3, 16, 1, tzinfo=UTC).timestamp()
    assert rush_profile(np.array([monday_8]))[0] > 1.5 * rush_profile(np.array([sunday_8]))[0]


def _lake(t: np.ndarray, air: float) -> LakeDrivers:
    from simulators.signals.cycles import solar_elevation_sin

    n = len(t)
    daily = air + 3.0 * np.cos(2 * np.pi * (local_hour(t) - 14.5) / 24)
    return LakeDrivers(
        daily,
        solar_elevation_sin(t),
        np.full(n, 0.4),
        np.zeros(n),
        np.ones(n),
        np.zeros(n),
        np.zeros(n),
        np.zeros(n),
    )


def test_dissolved_oxygen_bottoms_out_around_dawn_and_peaks_in_the_afternoon() -> None:
    t = JULY + np.arange(0, 8 * 86400, 60.0)
    buoy = BuoyModel(60.0)
    grid = buoy.grid(np.random.default_rng(1), t, _lake(t, 29.5))
    settled = slice(3 * 1440, None)
    oxygen = grid[Quantity.DISSOLVED_OXYGEN][settled]
    profile = hourly_profile(t[settled], oxygen)
    assert 4 <= int(np.argmin(profile)) <= 6  # before/at dawn (sunrise ≈ 05:20 in July)
    assert 14 <= int(np.argmax(profile)) <= 17
    saturation = 100 * oxygen / do_saturation(grid[Quantity.WATER_TEMPERATURE][settled])
    assert saturation.max() > 140  # afternoon supersaturation (domain.md §4.2: ~180 %)
    assert saturation.min() < 60


def test_cool_season_oxygen_swings_less_and_sits_higher() -> None:
    t = JANUARY + np.arange(0, 6 * 86400, 60.0)
    grid = BuoyModel(60.0).grid(np.random.default_rng(1), t, _lake(t, 16.5))
    oxygen = grid[Quantity.DISSOLVED_OXYGEN][3 * 1440 :]
    assert oxygen.min() > 6.0
    assert oxygen.max() - oxygen.min() < 4.0


def test_flood_depth_follows_rain_with_a_lag_and_recedes() -> None:
    model = FloodDepthModel(12.0, 264.0, 1.5, 12.0)
    t = np.arange(0, 8 * 3600, 60.0)
    rain = np.where((t >= 600) & (t < 600 + 40 * 60), 110.0, 0.0)
    depth = model.depth(rain, 60.0)
    first_wet = t[np.argmax(depth > 1.0)]
    assert 5 * 60 <= first_wet - 600 <= 25 * 60  # drainage lag
    assert depth.max() > 30
    peak = int(np.argmax(depth))
    assert t[peak] > 600 + 40 * 60  # peak after the rain stops
    assert depth[-1] < 5  # receded within hours
    assert np.all(np.diff(depth[peak + 5 :]) <= 1e-9)  # monotone recession


def test_moderate_rain_leaves_streets_dry() -> None:
    depth = FloodDepthModel(12.0, 264.0, 1.5, 12.0).depth(np.full(120, 22.0), 60.0)
    assert depth.max() < 5  # 44 mm in 2 h: the drains keep up (domain.md §6.1)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 150.0), min_size=10, max_size=200), st.floats(1.0, 2.0))
def test_more_rain_never_means_less_flooding(rain: list[float], factor: float) -> None:
    base = FloodDepthModel(12.0, 264.0, 1.5, 12.0).depth(np.array(rain), 60.0)
    more = FloodDepthModel(12.0, 264.0, 1.5, 12.0).depth(np.array(rain) * factor, 60.0)
    assert np.all(base >= 0)
    assert np.all(more >= base - 1e-9)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 120.0), min_size=2, max_size=120))
def test_rain_gauge_reports_what_fell_in_whole_bucket_tips(rain: list[float]) -> None:
    grid = np.arange(len(rain), dtype=np.float64) * 60.0
    gauge = RainGaugeModel(0.2)
    reported = gauge.sample(grid, np.array(rain), grid + 59.0, 60.0)
    total = sum(rain) / 60.0
    assert np.all(reported >= 0)
    assert np.allclose(np.round(reported / 0.2), reported / 0.2)
    assert total - 0.2 - 1e-6 <= reported.sum() + (np.array(rain)[-1:] / 60).sum() + 1e-6
    assert reported.sum() <= total + 1e-6


def test_ar1_is_stationary_and_continues_across_calls() -> None:
    rng = np.random.default_rng(3)
    process = AR1(2.0, 3600.0, 60.0)
    series = np.concatenate([process.sample(rng, 5000) for _ in range(20)])
    assert abs(series.std() - 2.0) < 0.3
    lag1 = np.corrcoef(series[:-1], series[1:])[0, 1]
    assert abs(lag1 - np.exp(-60 / 3600)) < 0.02
