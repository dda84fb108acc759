"""Flood-alert lead time and the targets judged on it (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from contract import Quantity, StationId, TruthEvent
from hanoi_ioc.evaluate.lead_time import LeadConfig, first_crossing, flood_lead_times, rain_onset
from hanoi_ioc.evaluate.matching import score_alerts
from hanoi_ioc.evaluate.records import AlertTimeline, Series
from hanoi_ioc.evaluate.targets import judge_targets
from processing.alerts import Severity

T0 = datetime(2025, 9, 30, 0, 0, tzinfo=UTC)
MINUTES = (T0.timestamp() + 60.0 * np.arange(240)).astype(np.float64)


def flood(station: str, start_min: int, end_min: int) -> TruthEvent:
    return TruthEvent(f"f-{station}", "t", StationId(station), "flood", "event",
                      T0 + timedelta(minutes=start_min), T0 + timedelta(minutes=end_min),
                      (Quantity.WATER_DEPTH,))  # fmt: skip


def depth_ramp(start_min: int, cm_per_min: float) -> Series:
    depth = np.clip((np.arange(240) - start_min) * cm_per_min, 0.0, 60.0).astype(np.float64)
    return Series("x", "water_depth", MINUTES, depth)


def rain(start_min: int, mm_per_min: float, minutes: int = 60) -> Series:
    values = np.where((np.arange(240) >= start_min) & (np.arange(240) < start_min + minutes),
                      mm_per_min, 0.0).astype(np.float64)  # fmt: skip
    return Series("rg", "rainfall", MINUTES, values)


def forecast(station: str, minute: int, severe_minute: int | None = None) -> AlertTimeline:
    reached = {Severity.MINOR: T0 + timedelta(minutes=minute)}
    if severe_minute is not None:
        reached[Severity.SEVERE] = T0 + timedelta(minutes=severe_minute)
    return AlertTimeline(minute, "flood_forecast", "event", station, "water_depth",
                       max(reached, key=lambda s: s.rank), T0 + timedelta(minutes=minute),
                       None, reached)  # fmt: skip


def test_a_lone_spike_is_not_a_crossing() -> None:
    t = MINUTES[:6]
    spike = np.array([5.0, 80.0, 10.0, 29.0, 31.0, 33.0], dtype=np.float64)
    assert first_crossing(t, spike, 30.0) == t[4]
    last = np.array([5.0, 8.0, 9.0, 9.0, 9.0, 31.0], dtype=np.float64)
    assert first_crossing(t, last, 30.0) == t[5]
    assert first_crossing(t, np.full(6, 10.0, dtype=np.float64), 30.0) is None


def test_rain_onset_is_the_heavy_rain_of_the_wet_spell_that_caused_it() -> None:
    cfg = LeadConfig()
    drizzle_then_burst = np.where(np.arange(240) < 60, 0.2, 0.0).astype(np.float64)
    drizzle_then_burst[100:150] = 2.0  # 120 mm/h from minute 100
    onset = rain_onset(MINUTES, drizzle_then_burst, MINUTES[140], cfg)
    # the trailing 30-minute intensity reaches 25 mm/h after ~7 minutes of the burst
    assert onset is not None
    assert MINUTES[100] <= onset <= MINUTES[110]
    assert rain_onset(MINUTES, np.zeros(240, dtype=np.float64), MINUTES[140], cfg) is None


def test_lead_times_met_missed_no_chance_and_not_crossed() -> None:
    labels = [flood("fd-met", 40, 200), flood("fd-missed", 40, 200), flood("fd-sudden", 40, 200),
              flood("fd-shallow", 40, 200)]  # fmt: skip
    series = {
        ("fd-met", "water_depth"): depth_ramp(40, 1.0),  # 30 cm at minute 70
        ("fd-missed", "water_depth"): depth_ramp(40, 1.0),
        ("fd-sudden", "water_depth"): depth_ramp(40, 5.0),  # 30 cm at minute 46
        ("fd-shallow", "water_depth"): Series(
            "x",
            "water_depth",
            MINUTES,
            np.clip(depth_ramp(40, 0.2).values, 0.0, 20.0).astype(np.float64),
        ),
        ("rg-a", "rainfall"): rain(20, 2.0),
        ("rg-b", "rainfall"): rain(38, 3.0),
    }
    upstream = {"fd-met": "rg-a", "fd-missed": "rg-a", "fd-sudden": "rg-b", "fd-shallow": "rg-a"}
    alerts = [forecast("fd-met", 45, severe_minute=52), forecast("fd-missed", 65),
              forecast("fd-sudden", 44)]  # fmt: skip
    leads = {str(x.label.station_id): x for x in flood_lead_times(labels, alerts, series, upstream)}
    met = leads["fd-met"]
    assert met.verdict == "met"
    assert met.crossed_at == T0 + timedelta(minutes=70)
    assert met.lead_s == 25 * 60
    assert met.warning_lead_s == 18 * 60
    assert met.onset_from_rain
    assert leads["fd-missed"].verdict == "missed"
    assert leads["fd-missed"].lead_s == 5 * 60
    sudden = leads["fd-sudden"]
    assert sudden.verdict == "no_chance"  # the burst began < 12 min before 30 cm
    assert sudden.opportunity_s is not None
    assert sudden.opportunity_s < 12 * 60
    assert leads["fd-shallow"].verdict == "not_crossed"
    assert leads["fd-shallow"].peak_cm == 20.0

    scoring = score_alerts(labels, alerts, lambda _: 60.0)
    target = {t.name: t for t in judge_targets(scoring, list(leads.values()))}["flood.lead_time"]
    assert target.passed is False  # one flood with a chance was warned too late
    assert target.value == 0.5
    assert "no chance" in target.note


def test_targets_do_not_apply_without_anything_to_judge() -> None:
    verdicts = {t.name: t.verdict for t in judge_targets(score_alerts([], [], lambda _: 60.0), [])}
    assert set(verdicts.values()) == {"n/a"}
    assert "oxygen_crash.recall" in verdicts
