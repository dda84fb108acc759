"""QCVN 05:2023, partial WQI, flood levels, congestion and hour-ending aggregation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from contract import Quantity, Reading, StationId
from processing.errors import DetectorConfigError
from processing.indices.congestion import (
    CongestionLevel,
    CongestionLevels,
    FreeFlowTracker,
    congestion,
)
from processing.indices.flood import FloodLevel, FloodLevels, classify_depth, level_rank
from processing.indices.hourly import AqiTracker, HourlyAggregator, HourlyMean, hour_ending
from processing.indices.qcvn05 import (
    LIMITS,
    Parameter,
    Period,
    check,
    check_hourly_series,
    limit_for,
)
from processing.indices.vn_aqi import Pollutant
from processing.indices.water import (
    LABEL_EN,
    LABEL_VI,
    WqiCategory,
    ammonium_subindex,
    do_percent,
    do_saturation_mg_l,
    do_subindex,
    partial_wqi,
    ph_subindex,
    wqi_category,
)

# --- QCVN 05:2023 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "period", "value"),
    [
        (Parameter.SO2, Period.H1, 350), (Parameter.SO2, Period.H24, 125),
        (Parameter.SO2, Period.YEAR, 50), (Parameter.CO, Period.H1, 30_000),
        (Parameter.CO, Period.H8, 10_000), (Parameter.NO2, Period.H1, 200),
        (Parameter.NO2, Period.H24, 100), (Parameter.NO2, Period.YEAR, 40),
        (Parameter.O3, Period.H1, 200), (Parameter.O3, Period.H8, 120),
        (Parameter.TSP, Period.H1, 300), (Parameter.TSP, Period.H24, 200),
        (Parameter.TSP, Period.YEAR, 100), (Parameter.PM10, Period.H24, 100),
        (Parameter.PM10, Period.YEAR, 50), (Parameter.PM25, Period.YEAR, 25),
    ],
)  # fmt: skip
def test_qcvn05_table(parameter: Parameter, period: Period, value: float) -> None:
    limit = limit_for(parameter, period, date(2025, 6, 1))
    assert limit is not None
    assert limit.value_ug_m3 == value


def test_qcvn05_pm25_tightens_on_2026_01_01() -> None:
    before = limit_for(Parameter.PM25, Period.H24, date(2025, 12, 31))
    after = limit_for(Parameter.PM25, Period.H24, date(2026, 1, 1))
    assert before is not None
    assert after is not None
    assert (before.value_ug_m3, after.value_ug_m3) == (50.0, 45.0)
    assert check(Parameter.PM25, Period.H24, 47.0, date(2025, 12, 31)).exceeded is False  # type: ignore[union-attr]
    assert check(Parameter.PM25, Period.H24, 47.0, date(2026, 1, 1)).exceeded is True  # type: ignore[union-attr]


def test_qcvn05_exceedance_is_strict_and_missing_cells_are_none() -> None:
    at_limit = check(Parameter.NO2, Period.H1, 200.0, date(2026, 3, 1))
    assert at_limit is not None
    assert not at_limit.exceeded
    assert at_limit.ratio == pytest.approx(1.0)
    assert check(Parameter.PM10, Period.H1, 500.0, date(2026, 3, 1)) is None
    above = check(Parameter.NO2, Period.H1, 250.0, date(2026, 3, 1))
    assert above is not None
    assert "vượt" in above.text_vi
    assert "exceeds" in above.text_en
    assert len({(lim.parameter, lim.period, lim.valid_from) for lim in LIMITS}) == len(LIMITS)


def test_qcvn05_hourly_series_checks_every_period() -> None:
    series = [100.0] * 23 + [130.0]
    found = {e.period: e for e in check_hourly_series(Parameter.O3, series, date(2026, 5, 1))}
    assert set(found) == {Period.H1, Period.H8}
    assert found[Period.H8].value == pytest.approx((7 * 100 + 130) / 8)
    pm = check_hourly_series(Parameter.PM25, [50.0] * 20, date(2026, 5, 1))
    assert [(e.period, e.exceeded) for e in pm] == [(Period.H24, True)]
    assert check_hourly_series(Parameter.PM25, [50.0] * 10, date(2026, 5, 1)) == []


# --- water ---------------------------------------------------------------------------


@pytest.mark.parametrize(("temp", "sat"), [(20.0, 9.02), (25.0, 8.18), (30.0, 7.44), (32.0, 7.16)])
def test_do_saturation_checks(temp: float, sat: float) -> None:
    assert do_saturation_mg_l(temp) == pytest.approx(sat, abs=0.01)


def test_sub_indices() -> None:
    assert [ph_subindex(p) for p in (5.0, 5.5, 5.75, 6.0, 7.5, 8.5, 8.75, 9.0, 9.5)] == [
        10.0, 50.0, 75.0, 100.0, 100.0, 100.0, 75.0, 50.0, 10.0
    ]  # fmt: skip
    assert [do_subindex(p) for p in (10, 20, 50, 75, 88, 100, 112, 125, 150, 200, 250)] == [
        10.0, 25.0, 50.0, 75.0, 100.0, 100.0, 100.0, 75.0, 50.0, 25.0, 10.0
    ]  # fmt: skip
    assert do_subindex(35.0) == pytest.approx(37.5)
    assert [ammonium_subindex(c) for c in (0.1, 0.3, 0.6, 0.9, 5.0, 8.0)] == [
        100.0, 75.0, 50.0, 25.0, 10.0, 10.0
    ]  # fmt: skip


def test_partial_wqi_is_labelled_and_partial() -> None:
    wqi = partial_wqi(ph=9.2, do_mg_l=2.0, temp_c=30.0, ammonium_mg_l=1.5)
    assert wqi is not None
    assert wqi.label_en == LABEL_EN == "WQI (partial, indicative)"
    assert wqi.label_vi == LABEL_VI == "WQI (một phần, tham khảo)"
    assert wqi.is_official is False
    do = do_subindex(do_percent(2.0, 30.0))
    expected = 10.0 / 100.0 * (do + ammonium_subindex(1.5)) / 2
    assert wqi.exact == pytest.approx(expected)
    assert wqi.category is WqiCategory.VERY_POLLUTED
    assert partial_wqi(ph=7.0) is None  # no group IV parameter
    only_do = partial_wqi(do_mg_l=7.44, temp_c=30.0)
    assert only_do is not None
    assert only_do.value == 100
    assert only_do.missing == ("ph", "ammonium")


def test_wqi_categories() -> None:
    cats = [wqi_category(v).category for v in (100, 91, 90, 76, 75, 51, 50, 26, 25, 10, 9, 0)]
    assert cats == [
        WqiCategory.VERY_GOOD, WqiCategory.VERY_GOOD, WqiCategory.GOOD, WqiCategory.GOOD,
        WqiCategory.MEDIUM, WqiCategory.MEDIUM, WqiCategory.POOR, WqiCategory.POOR,
        WqiCategory.BAD, WqiCategory.BAD, WqiCategory.VERY_POLLUTED, WqiCategory.VERY_POLLUTED,
    ]  # fmt: skip


# --- flood and congestion ------------------------------------------------------------


def test_flood_levels_default_and_configurable() -> None:
    depths = (0.0, 9.9, 10.0, 19.9, 20.0, 30.0, 49.0, 50.0, 120.0)
    assert [classify_depth(d) for d in depths] == [
        FloodLevel.NONE, FloodLevel.NONE, FloodLevel.WATCH, FloodLevel.WATCH,
        FloodLevel.WARNING, FloodLevel.SEVERE, FloodLevel.SEVERE, FloodLevel.EXTREME,
        FloodLevel.EXTREME,
    ]  # fmt: skip
    custom = FloodLevels(watch_cm=5, warning_cm=15, severe_cm=25, extreme_cm=40)
    assert classify_depth(16.0, custom) is FloodLevel.WARNING
    with pytest.raises(DetectorConfigError):
        FloodLevels(watch_cm=20, warning_cm=10)
    assert level_rank(FloodLevel.EXTREME) == 4


def test_flood_hysteresis() -> None:
    assert classify_depth(19.0, previous=FloodLevel.WARNING, hysteresis_cm=2) is FloodLevel.WARNING
    assert classify_depth(17.0, previous=FloodLevel.WARNING, hysteresis_cm=2) is FloodLevel.WATCH
    assert classify_depth(28.5, previous=FloodLevel.EXTREME, hysteresis_cm=2) is FloodLevel.SEVERE
    assert classify_depth(9.0, previous=FloodLevel.WATCH, hysteresis_cm=2) is FloodLevel.WATCH
    assert classify_depth(7.0, previous=FloodLevel.WATCH, hysteresis_cm=2) is FloodLevel.NONE
    assert classify_depth(35.0, previous=FloodLevel.WATCH, hysteresis_cm=2) is FloodLevel.SEVERE


def test_congestion_levels() -> None:
    levels = [congestion(v, 40.0) for v in (40.0, 30.0, 29.9, 20.0, 19.9, 10.0, 9.9, 0.0, 60.0)]
    assert [c.level for c in levels if c is not None] == [
        CongestionLevel.FREE, CongestionLevel.FREE, CongestionLevel.SLOW, CongestionLevel.SLOW,
        CongestionLevel.CONGESTED, CongestionLevel.CONGESTED, CongestionLevel.JAMMED,
        CongestionLevel.JAMMED, CongestionLevel.FREE,
    ]  # fmt: skip
    jammed = congestion(0.0, 40.0)
    assert jammed is not None
    assert (jammed.index, jammed.is_congested) == (100.0, True)
    assert congestion(10.0, 0.0) is None
    with pytest.raises(DetectorConfigError):
        CongestionLevels(slow_below=0.4, congested_below=0.5)


def test_free_flow_tracker() -> None:
    tracker = FreeFlowTracker({"known.speed": 50.0}, max_sensors=1)
    tracker.observe("known.speed", 5.0)
    assert tracker.free_flow("known.speed") == 50.0
    tracker.observe("a.speed", 30.0)
    tracker.observe("b.speed", 30.0)
    assert tracker.free_flow("a.speed") == 30.0
    assert tracker.free_flow("b.speed") is None
    assert tracker.refused == 1


# --- hourly aggregation and the AQI tracker -------------------------------------------

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def test_hour_ending_convention() -> None:
    assert hour_ending(T0 + timedelta(minutes=1)) == T0 + timedelta(hours=1)
    assert hour_ending(T0 + timedelta(hours=1)) == T0 + timedelta(hours=1)
    assert hour_ending(T0 + timedelta(hours=1, microseconds=1)) == T0 + timedelta(hours=2)
    with pytest.raises(DetectorConfigError):
        hour_ending(datetime(2026, 1, 5))


def test_hourly_aggregator_completeness_late_and_bounds() -> None:
    agg = HourlyAggregator(max_sensors=2)
    closed = []
    for minute in range(1, 61):  # every minute but only 40 of them reported
        if minute % 3 == 0:
            continue
        closed += agg.add_value("aq-1.pm25", T0 + timedelta(minutes=minute), 10.0 + minute)
    closed += agg.add_value("aq-1.pm25", T0 + timedelta(minutes=61), 1.0)
    assert len(closed) == 1
    mean = closed[0]
    assert (mean.count, mean.expected, mean.valid) == (40, 60, False)
    assert agg.add_value("aq-1.pm25", T0 + timedelta(minutes=30), 5.0) == []
    assert agg.late_dropped == 1
    agg.add_value("aq-2.pm25", T0, 1.0)
    assert agg.add_value("aq-3.pm25", T0, 1.0) == []
    assert agg.refused == 1
    flushed = agg.flush(T0 + timedelta(hours=3))
    assert [m.sensor_id for m in flushed] == ["aq-2.pm25", "aq-1.pm25"]


def test_aggregator_accepts_readings() -> None:
    agg = HourlyAggregator()
    at = T0 + timedelta(minutes=5)
    reading = Reading(StationId("aq-1"), Quantity.PM25, 12.0, at, at)
    assert agg.add(reading, interval_s=3600.0) == []
    (mean,) = agg.flush(T0 + timedelta(hours=2))
    assert (mean.sensor_id, mean.mean, mean.valid) == ("aq-1.pm25", 12.0, True)


def test_aqi_tracker_hourly_and_daily() -> None:
    tracker = AqiTracker()
    # Local day 2026-01-05 = hour-ending 01:00 local (18:00 UTC on the 4th) .. 00:00 local.
    day_start = datetime(2026, 1, 4, 18, tzinfo=UTC)
    for h in range(-7, 24):
        at = day_start + timedelta(hours=h)
        tracker.add("aq-1", Pollutant.PM25, at, 55.7)
        tracker.add("aq-1", Pollutant.NO2, at, 130.8 if h == 5 else 80.0)
    daily = tracker.daily("aq-1", date(2026, 1, 5))
    assert daily.value == 110
    assert daily.sub_indices[Pollutant.NO2] == pytest.approx(65.4)
    hourly = tracker.hourly("aq-1", day_start + timedelta(hours=5))
    assert hourly.sub_indices[Pollutant.NO2] == pytest.approx(65.4)
    assert tracker.stations() == ["aq-1"]
    assert tracker.daily("nowhere", date(2026, 1, 5)).value is None


def test_aqi_tracker_missing_hours_and_bounds() -> None:
    tracker = AqiTracker(max_stations=1)
    tracker.add("aq-1", Pollutant.PM25, T0, 30.0)
    tracker.add("aq-1", Pollutant.PM25, T0 + timedelta(hours=2), 30.0)
    # c1 present, c2 missing, c3 present: 2 of 3 -> computed.
    assert tracker.hourly("aq-1", T0 + timedelta(hours=2)).value == 60
    # c1 missing, c2 missing: not computed.
    assert tracker.hourly("aq-1", T0 + timedelta(hours=4)).value is None
    tracker.add("aq-2", Pollutant.PM25, T0, 30.0)
    assert tracker.refused == 1
    agg = HourlyAggregator()
    for minute in range(0, 60, 5):
        agg.add_value("aq-1.co", T0 + timedelta(minutes=minute, seconds=1), 1000.0, 300.0)
    (co_mean,) = agg.flush(T0 + timedelta(hours=2))
    assert co_mean.valid
    assert tracker.add_mean(co_mean)
    assert not tracker.add_mean(HourlyMean("tr-1.speed", T0, 1.0, 1, 1, True))
