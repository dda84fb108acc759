"""Flood nowcast: rising, receding and noisy depth series, upstream rain, warnings in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from contract import Quantity, Reading, StationId
from processing.errors import DetectorConfigError
from processing.indices.flood import FloodLevel, FloodLevels
from processing.nowcast import FloodNowcaster, NowcastConfig, nowcast_flood

MINUTE = 60.0


def test_rising_series_gives_arrival_times_and_ranges() -> None:
    t = MINUTE * np.arange(20)
    depth = 1.0 + 0.5 * np.arange(20)  # 30 cm/h, now at 10.5 cm
    result = nowcast_flood(t, depth, hotspot_id="fd-1")
    assert result is not None
    assert result.hotspot_id == "fd-1"
    assert result.rate_cm_h == pytest.approx(30.0)
    assert result.depth_cm == pytest.approx(10.5)
    assert result.current_level is FloodLevel.WATCH
    etas = {e.level: e for e in result.etas}
    assert etas[FloodLevel.WATCH].reached
    assert etas[FloodLevel.WARNING].eta_s == pytest.approx(19 * MINUTE)
    assert etas[FloodLevel.SEVERE].eta_s == pytest.approx(39 * MINUTE)
    assert etas[FloodLevel.EXTREME].eta_s == pytest.approx(79 * MINUTE)
    assert result.confidence == pytest.approx(1.0)
    nxt = result.next_level()
    assert nxt is not None
    assert nxt.level is FloodLevel.WARNING
    assert [e.level for e in result.warnings(30 * MINUTE)] == [FloodLevel.WARNING]


def test_receding_and_flat_series_expect_no_crossing() -> None:
    t = MINUTE * np.arange(20)
    receding = nowcast_flood(t, 40.0 - 0.5 * np.arange(20))
    assert receding is not None
    assert receding.rate_cm_h < 0
    assert receding.current_level is FloodLevel.SEVERE
    pending = [e for e in receding.etas if not e.reached]
    assert all(e.eta_s is None for e in pending)
    assert receding.warnings(3600.0) == ()
    assert receding.next_level() is None
    assert receding.confidence == 0.0
    flat = nowcast_flood(t, np.full(20, 3.0))
    assert flat is not None
    assert flat.next_level() is None


def test_noisy_rise_is_robust_to_spikes_and_reports_uncertainty() -> None:
    rng = np.random.default_rng(0)
    t = MINUTE * np.arange(30)
    depth = 2.0 + 0.4 * np.arange(30) + rng.normal(0, 0.8, 30)
    depth[[5, 17, 23]] += 25.0  # glitches
    result = nowcast_flood(t, depth)
    assert result is not None
    assert result.rate_cm_h == pytest.approx(24.0, rel=0.25)
    warning = {e.level: e for e in result.etas}[FloodLevel.WARNING]
    assert warning.eta_early_s is not None
    assert warning.eta_s is not None
    assert warning.eta_early_s <= warning.eta_s
    assert warning.eta_late_s is None or warning.eta_late_s >= warning.eta_s
    assert 0.0 < result.confidence <= 1.0


def test_upstream_rain_warns_before_the_depth_responds() -> None:
    t = MINUTE * np.arange(0, 30, 5)
    depth = np.full(t.size, 1.0)
    rain_t = MINUTE * np.arange(0, 30, 5)
    heavy = nowcast_flood(t, depth, rain_times_s=rain_t, rain_mm=np.full(rain_t.size, 10.0))
    assert heavy is not None
    assert heavy.rain_mm_h == pytest.approx(120.0)
    assert heavy.rain_rate_cm_h == pytest.approx(0.5 * (120.0 - 25.0))
    assert heavy.next_level() is not None
    light = nowcast_flood(t, depth, rain_times_s=rain_t, rain_mm=np.full(rain_t.size, 1.0))
    assert light is not None
    assert light.rain_rate_cm_h == 0.0
    assert light.next_level() is None


def test_insufficient_data_and_window() -> None:
    assert nowcast_flood([0.0, 60.0], [1.0, 2.0]) is None
    assert nowcast_flood([], []) is None
    assert nowcast_flood([0.0] * 5, [1.0] * 5) is None  # no time span
    t = MINUTE * np.arange(10)
    # Only the last 30 minutes count: old points outside the window are ignored.
    old_and_new = nowcast_flood(np.r_[t - 7200.0, t], np.r_[np.full(10, 80.0), np.full(10, 2.0)])
    assert old_and_new is not None
    assert old_and_new.depth_cm == pytest.approx(2.0)


def test_configuration_is_validated_and_levels_are_configurable() -> None:
    with pytest.raises(DetectorConfigError):
        NowcastConfig(min_points=2)
    with pytest.raises(DetectorConfigError):
        NowcastConfig(rain_gain_cm_per_mm=-1.0)
    cfg = NowcastConfig(levels=FloodLevels(5.0, 15.0, 25.0, 35.0), horizon_s=1800.0)
    t = MINUTE * np.arange(10)
    result = nowcast_flood(t, 1.0 + 0.5 * np.arange(10), config=cfg)
    assert result is not None
    etas = {e.level: e.eta_s for e in result.etas}
    assert etas[FloodLevel.WATCH] == 0.0
    assert etas[FloodLevel.WARNING] == pytest.approx(19 * MINUTE)
    assert etas[FloodLevel.SEVERE] is None  # 39 min is beyond the 30 min horizon


def test_streaming_nowcaster_alerts_before_each_level_is_crossed() -> None:
    caster = FloodNowcaster(max_series=3)
    caster.link("fd-thai-ha", ["rg-lang"])
    start = datetime(2026, 9, 30, 0, 0, tzinfo=UTC)
    warned_at: dict[FloodLevel, int] = {}
    crossed_at: dict[FloodLevel, int] = {}
    levels = dict(FloodLevels().thresholds())
    for minute in range(0, 90):
        at = start + timedelta(minutes=minute)
        rain = 12.0 if 10 <= minute < 60 else 0.0  # 144 mm/h burst (5-minute gauge totals)
        if minute % 5 == 0:
            caster.observe(Reading(StationId("rg-lang"), Quantity.RAINFALL, rain, at, at))
        depth = max(0.5, 1.0 * (minute - 15)) if minute < 75 else 60.0 - (minute - 75)
        caster.observe(Reading(StationId("fd-thai-ha"), Quantity.WATER_DEPTH, depth, at, at))
        caster.observe(Reading(StationId("aq-x"), Quantity.PM25, 10.0, at, at))  # ignored
        for level, threshold in levels.items():
            if depth >= threshold:
                crossed_at.setdefault(level, minute)
        for _, eta in caster.warnings(at.timestamp(), lead_time_s=20 * MINUTE):
            warned_at.setdefault(eta.level, minute)
    assert set(crossed_at) == set(FloodLevel) - {FloodLevel.NONE}
    for level, minute in crossed_at.items():
        assert level in warned_at
        assert warned_at[level] < minute  # the alert comes before the level is crossed
    assert caster.hotspots() == ["fd-thai-ha"]
    assert caster.nowcast("nowhere") is None
    caster.observe_depth("fd-2", 0.0, 1.0)
    caster.observe_depth("fd-3", 0.0, 1.0)
    assert caster.refused == 1


def test_a_sensor_offset_reset_is_not_a_rise() -> None:
    # A depth sensor drifted to -13 cm over a dry day, then its offset is reset to 0 cm:
    # no water either way, so no trend and no warning (the offset step is not a flood).
    caster = FloodNowcaster()
    start = datetime(2025, 12, 13, 0, 0, tzinfo=UTC)
    warned = []
    for minute in range(120):
        at = start + timedelta(minutes=minute)
        depth = -13.0 + 0.01 * minute if minute < 100 else 0.1 * (minute % 2)
        caster.observe(Reading(StationId("fd-x"), Quantity.WATER_DEPTH, depth, at, at))
        warned += caster.warnings(at.timestamp(), lead_time_s=30 * MINUTE)
    assert warned == []
    nowcast = caster.nowcast("fd-x")
    assert nowcast is not None
    assert nowcast.depth_cm >= 0.0
