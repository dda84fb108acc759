"""Alert texts as the environment department reads them: every public rule's wording and
instruction, current value and trend beside the peak, scores without units, no doubled
station kind, numbers and times as each language writes them."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from contract import Domain, Quantity, Reading, Station, StationId
from processing.alerts import Severity
from processing.alerts.lifecycle import Lifecycle, Raise, Update
from processing.alerts.wording import Place, Trend, number_en, number_vi, score_en, score_vi
from processing.bank import BankResult, LaneResult
from processing.conditions.air_quality import aqi_conditions
from processing.conditions.base import Condition
from processing.conditions.clock import _texts as clock_texts
from processing.conditions.forecasts import ForecastSource
from processing.conditions.lanes import conditions_from
from processing.conditions.rainfall import RainAccumulator
from processing.conditions.registry import RULES
from processing.conditions.silence import _texts as silence_texts
from processing.conditions.thresholds import DEFAULT_RULES, evaluate
from processing.derived import DerivedSeries, IndexRow
from simulators.fleet import hanoi_fleet

T0 = datetime(2025, 9, 30, 0, 0, tzinfo=UTC)  # 07:00 in Hanoi
FLEET: dict[str, Station] = {str(s.station_id): s for s in hanoi_fleet()}
BY_QUANTITY = {r.quantity: [r] for r in DEFAULT_RULES}
DOUBLED = re.compile(r"\b(\w+(?: \w+){0,3}),? \1\b")
"""One to four words said twice in a row ("Trạm đo mưa Trạm đo mưa", "Hoàn Kiếm, Hoàn Kiếm")."""


def _reading(station: str, quantity: Quantity, minute: float, value: float) -> Reading:
    at = T0 + timedelta(minutes=minute)
    return Reading(StationId(station), quantity, value, at, at)


def _of(domain: Domain, kind: str) -> list[Station]:
    return [s for s in FLEET.values() if s.domain is domain and s.kind == kind]


def _first_abnormal(conditions: list[Condition]) -> Condition:
    return next(c for c in conditions if c.severity is not None)


def test_numbers_and_scores_as_each_language_writes_them() -> None:
    assert (number_vi(9.8), number_en(9.8)) == ("9,8", "9.8")
    assert (number_vi(-0.25, 2), number_vi(12_345.0, 0)) == ("-0,25", "12.345")
    assert score_vi(0.934, 0.5) == "điểm bất thường 0,93 (ngưỡng 0,50)"
    assert score_en(0.934, 0.5) == "anomaly score 0.93 (threshold 0.50)"
    assert Trend.of(1.5, 1.0) is Trend.RISING
    assert Trend.of(-1.5, 1.0) is Trend.FALLING
    assert Trend.of(0.5, 1.0).label_vi == "ổn định"


def test_observed_flood_wording_and_instruction() -> None:
    station = FLEET["fd-thai-ha"]
    (cond,) = evaluate([_reading("fd-thai-ha", Quantity.WATER_DEPTH, 23, 50.1)], BY_QUANTITY,
                       FLEET)  # fmt: skip
    title_vi, title_en, message_vi, message_en = cond.texts
    assert title_vi == f"Ngập úng đô thị – Rất nguy hiểm: {station.name}"
    assert title_en == f"Urban flooding – Extreme: {station.name}"
    assert message_vi == (
        f"Độ sâu ngập tại {station.name}, {station.district} là 50,1 cm lúc 07:23 30/09/2025 "
        "(giờ Hà Nội), vượt ngưỡng rất nguy hiểm 50 cm."
    )
    assert "is 50.1 cm at 07:23 30/09/2025 (Hanoi time), above the extreme threshold of 50 cm" in (
        message_en
    )
    assert cond.details["instruction_vi"] == RULES["flood_depth"].instruction_vi
    assert "Không đi vào khu vực ngập" in str(cond.details["instruction_vi"])
    assert "Keep out of the flooded area" in str(cond.details["instruction_en"])


def test_lake_rules_wording_and_instruction() -> None:
    oxygen, bloom = (
        _first_abnormal(evaluate([_reading("wl-buoy-" + s, q, 0, v)], BY_QUANTITY, FLEET))
        for s, q, v in (
            (next(iter(_of(Domain.WATER, "buoy"))).station_id.removeprefix("wl-buoy-"),
             Quantity.DISSOLVED_OXYGEN, 1.8),
            (next(iter(_of(Domain.WATER, "buoy"))).station_id.removeprefix("wl-buoy-"),
             Quantity.CHLOROPHYLL_A, 112.5),
        )
    )  # fmt: skip
    assert "là 1,8 mg/L" in oxygen.texts[2]
    assert "dưới ngưỡng nguy cơ cá chết 2 mg/L" in oxygen.texts[2]
    assert "is 1.8 mg/L" in oxygen.texts[3]
    assert "cá chết" in str(oxygen.details["instruction_vi"])
    assert "112,5" in bloom.texts[2]
    assert "không bơi" in str(bloom.details["instruction_vi"])
    assert "no swimming" in str(bloom.details["instruction_en"])


def test_heavy_rain_names_the_gauge_once_and_has_an_instruction() -> None:
    gauge = _of(Domain.FLOOD, "rain_gauge")[0]
    assert gauge.name.startswith("Trạm đo mưa ")
    rain = RainAccumulator()
    conds = rain.judge([_reading(gauge.station_id, Quantity.RAINFALL, m, 1.0) for m in range(30)],
                       FLEET)  # fmt: skip
    cond = _first_abnormal(conds)
    title_vi, _, message_vi, message_en = cond.texts
    assert title_vi == f"Mưa lớn: {gauge.name}"
    assert message_vi.startswith(f"{gauge.name}, {gauge.district} ghi nhận 20 mm trong 2 giờ qua")
    assert "Trạm đo mưa Trạm đo mưa" not in message_vi
    assert message_en.startswith(f"{gauge.name}, {gauge.district} measured 20 mm in the last 2 h")
    assert "hạ lưu" in str(cond.details["instruction_vi"])
    # an unregistered gauge is named by its kind and id
    (bare,) = RainAccumulator().judge([_reading("rg-new", Quantity.RAINFALL, 0, 25.0)], {})
    assert bare.texts[2].startswith("Trạm đo mưa rg-new ghi nhận")
    assert bare.texts[3].startswith("Rain gauge rg-new measured")


def _forecast() -> Condition:
    hotspot = FLEET["fd-thai-ha"]
    gauge = str(hotspot.attributes["upstream_gauge"])
    derived = DerivedSeries()
    derived.link([hotspot, FLEET[gauge]])
    source = ForecastSource(derived, lead_time_s=1800)
    for minute in range(60):
        batch = [_reading(gauge, Quantity.RAINFALL, minute, 2.0 if minute >= 5 else 0.0),
                 _reading("fd-thai-ha", Quantity.WATER_DEPTH, minute,
                          max(0.0, (minute - 10) * 0.8))]  # fmt: skip
        derived.observe(batch, {})
        for cond in source.forecasts(batch, FLEET, set()):
            if cond.severity is not None:
                return cond
    raise AssertionError("no forecast")


def test_flood_forecast_wording_and_instruction() -> None:
    cond = _forecast()
    title_vi, _, message_vi, message_en = cond.texts
    assert title_vi.startswith("Dự báo ngập ")
    assert "(giờ Hà Nội) độ sâu ngập tại Điểm ngập" in message_vi
    assert "dự kiến đạt" in message_vi
    assert "expected to reach" in message_en
    assert "Chuẩn bị phân luồng" in str(cond.details["instruction_vi"])
    assert "Prepare traffic diversions" in str(cond.details["instruction_en"])
    assert "phân luồng" not in message_vi  # the instruction is not the description


def test_air_quality_wording_and_instruction_by_level() -> None:
    station = _of(Domain.AIR, "air_quality")[0]
    row = IndexRow(T0, station.station_id, "VN_AQI", 187.0, "Xấu / Bad", "pm25", {})
    worse = IndexRow(T0, station.station_id, "VN_AQI", 320.0, "Nguy hại / Hazardous", "pm25", {})
    bad, hazardous = aqi_conditions([row, worse], FLEET)
    assert bad.texts[2] == (
        f"VN_AQI giờ tại {Place.of(station, station.station_id).in_district} là 187 (Xấu) cho "
        "giờ kết thúc lúc 07:00 30/09/2025 (giờ Hà Nội), chủ yếu do bụi PM2.5."
    )
    assert bad.texts[3].endswith("(Hanoi time), mainly PM2.5.")
    assert "hạn chế hoạt động mạnh ngoài trời" in str(bad.details["instruction_vi"])
    assert "Ở trong nhà" in str(hazardous.details["instruction_vi"])
    assert "Stay indoors" in str(hazardous.details["instruction_en"])


def test_every_public_rule_has_an_instruction_internal_ones_none() -> None:
    for name, spec in RULES.items():
        assert bool(spec.instructions()) is spec.public, name
    assert {n for n, s in RULES.items() if s.public} == {
        "flood_depth", "flood_forecast", "heavy_rain", "air_quality", "low_oxygen",
        "algal_bloom",
    }  # fmt: skip


def _lane(lane: str, quantity: Quantity, station: str, value: float) -> Condition:
    reading = _reading(station, quantity, 5, value)
    result = BankResult(
        [reading],
        (LaneResult(lane, lane, 0.5, np.array([0]), np.array([0.934]), np.array([True])),),
    )
    (cond,) = conditions_from(result, FLEET, ())
    return cond


@pytest.mark.parametrize(("lane", "quantity", "station"), [
    ("stuck", Quantity.PM25, "aq-hoan-kiem"), ("neighbours", Quantity.PM25, "aq-hoan-kiem"),
    ("spike", Quantity.WATER_DEPTH, "fd-thai-ha"),
])  # fmt: skip
def test_scores_are_never_shown_with_a_unit(lane: str, quantity: Quantity, station: str) -> None:
    if station not in FLEET:
        station = next(iter(_of(Domain.AIR, "air_quality"))).station_id
    cond = _lane(lane, quantity, station, 0.0)
    _, _, message_vi, message_en = cond.texts
    assert message_vi.endswith("; điểm bất thường 0,93 (ngưỡng 0,50).")
    assert message_en.endswith("; anomaly score 0.93 (threshold 0.50).")
    assert cond.threshold is None  # the score threshold is no value of the quantity
    assert (cond.details["score"], cond.details["score_threshold"]) == (0.934, 0.5)


def test_updates_show_current_value_and_trend_beside_the_peak() -> None:
    """A street floods to 50.1 cm, drains to 9.8 cm and stays there: the open alert says so."""
    station = FLEET["fd-thai-ha"]
    rise = [5.0, 12.0, 12.0, 25.0, 40.0, 50.1]  # minutes 0-5: raised at 12, peak at 07:05
    fall = [50.1 - 2 * k for k in range(1, 21)]  # minutes 6-25: 2 cm a minute down to 10.1
    series = [*rise, *fall, *[9.8] * 30]  # then 30 minutes at 9.8 (not yet back to normal)
    life = Lifecycle(clear_after=3)
    commands = []
    for minute, cm in enumerate(series):
        for cond in evaluate([_reading("fd-thai-ha", Quantity.WATER_DEPTH, minute, cm)],
                             BY_QUANTITY, FLEET):  # fmt: skip
            command = life.step(cond, station)
            if command is not None:
                commands.append((minute, command))
    assert isinstance(commands[0][1], Raise)
    follows = [(m, c.alert) for m, c in commands if isinstance(c, Update) and "hiện tại" in
               c.alert.message_vi]  # fmt: skip
    assert follows, [c for _, c in commands]
    for (m1, _), (m2, _) in itertools.pairwise(follows):
        assert m2 - m1 >= 10  # at most one following update per 10 minutes of event time
    falling = next(a for _, a in follows if a.details["trend"] == "falling")
    assert falling.severity is Severity.EXTREME  # the peak's severity is kept while open
    assert "(đang giảm)" in falling.message_vi
    assert "đỉnh 50,1 cm lúc 07:05 30/09/2025 (giờ Hà Nội)." in falling.message_vi
    assert "peak 50.1 cm at 07:05 30/09/2025 (Hanoi time)." in falling.message_en
    last = follows[-1][1]
    assert last.message_vi == (
        f"Độ sâu ngập tại {station.name}, {station.district} hiện tại 9,8 cm (ổn định) lúc "
        f"{last.observed_at.astimezone(UTC) + timedelta(hours=7):%H:%M %d/%m/%Y}, đỉnh 50,1 cm "
        "lúc 07:05 30/09/2025 (giờ Hà Nội)."
    )
    assert last.value == 9.8
    assert (last.details["current_value"], last.details["peak_value"]) == (9.8, 50.1)
    assert last.details["peak_at"] == "2025-09-30T00:05:00Z"
    assert last.title_en.startswith("Urban flooding – Extreme")
    assert last.details["instruction_vi"] == RULES["flood_depth"].instruction_vi


def _all_texts() -> Iterator[str]:
    """Texts of every rule with a station, for every station of the fleet it applies to."""
    for station in FLEET.values():
        sid = station.station_id
        for sensor in station.sensors:
            rules = BY_QUANTITY.get(sensor.quantity, [])
            for rule in rules:
                worst = rule.levels[-1].threshold
                value = worst + 1 if rule.direction == "above" else worst - 0.5
                for cond in evaluate([_reading(sid, sensor.quantity, 0, value)], BY_QUANTITY,
                                     FLEET):  # fmt: skip
                    yield from cond.texts
            for lane in ("stuck", "spike", "neighbours"):
                yield from _lane(lane, sensor.quantity, sid, 3.0).texts
        if station.kind == "rain_gauge":
            conds = RainAccumulator().judge([_reading(sid, Quantity.RAINFALL, 0, 30.0)], FLEET)
            yield from conds[0].texts
        if station.domain is Domain.AIR:
            row = IndexRow(T0, sid, "VN_AQI", 250.0, "Rất xấu / Very bad", "pm25", {})
            yield from aqi_conditions([row], FLEET)[0].texts
        quantities = [sensor.quantity for sensor in station.sensors]
        yield from silence_texts(station, sid, quantities, T0.timestamp(), 12.0)
        yield from clock_texts(station, sid, 5400.0, T0.timestamp())
    yield from _forecast().texts


def test_no_text_doubles_a_prefix() -> None:
    texts = list(_all_texts())
    assert len(texts) > 400
    doubled = [t for t in texts if DOUBLED.search(t)]
    assert doubled == []
    assert [
        t for t in texts if re.search(r"\bug/|\bCel\b|\d\.\d+ (cm|mm|µg|mg)\b.*giờ Hà Nội", t)
    ] == []
    assert any("µg/m³" in t for t in texts)


def test_an_alert_restored_after_a_restart_is_followed_from_its_stored_peak() -> None:
    station = FLEET["fd-thai-ha"]
    first = Lifecycle()
    raised = None
    for minute, cm in enumerate([12.0, 31.0, 31.0, 52.4]):
        for cond in evaluate([_reading("fd-thai-ha", Quantity.WATER_DEPTH, minute, cm)],
                             BY_QUANTITY, FLEET):  # fmt: skip
            command = first.step(cond, station)
            if isinstance(command, Raise | Update):
                raised = command.alert
    assert raised is not None
    assert raised.details["peak_value"] == 52.4
    stored = dataclasses.replace(raised, alert_id=7)
    # a new instance: the open alert from the database, then the street drains
    life = Lifecycle()
    life.restore([(stored.dedup_key, stored.severity, stored.observed_at)])
    life.resume_following([stored])
    updates = []
    for minute in range(4, 40):
        cm = max(12.0, 52.4 - 2 * (minute - 3))
        for cond in evaluate([_reading("fd-thai-ha", Quantity.WATER_DEPTH, minute, cm)],
                             BY_QUANTITY, FLEET):  # fmt: skip
            command = life.step(cond, station)
            if isinstance(command, Update):
                updates.append(command.alert)
    assert updates
    assert all(a.severity is Severity.EXTREME for a in updates)
    assert "đỉnh 52,4 cm lúc 07:03 30/09/2025" in updates[0].message_vi
    assert updates[0].title_vi == stored.title_vi
    assert updates[0].details["raised_observed_at"] == stored.details["raised_observed_at"]


def test_a_restored_alert_is_followed_even_when_no_reading_reaches_a_level() -> None:
    """Restarted while the street drains: 9.8 cm is under every level, not yet normal."""
    station = FLEET["fd-thai-ha"]
    (cond,) = evaluate([_reading("fd-thai-ha", Quantity.WATER_DEPTH, 3, 52.4)], BY_QUANTITY,
                       FLEET)  # fmt: skip
    first = Lifecycle()
    for minute in (2, 3):
        for c in evaluate([_reading("fd-thai-ha", Quantity.WATER_DEPTH, minute, 52.4)],
                          BY_QUANTITY, FLEET):  # fmt: skip
            command = first.step(c, station)
            if isinstance(command, Raise):
                stored = command.alert
    assert cond.value == stored.value
    life = Lifecycle()
    life.restore([(stored.dedup_key, stored.severity, stored.observed_at)])
    life.resume_following([stored])
    updates = []
    for minute in range(4, 30):
        for c in evaluate([_reading("fd-thai-ha", Quantity.WATER_DEPTH, minute, 9.8)],
                          BY_QUANTITY, FLEET):  # fmt: skip
            assert c.severity is None
            command = life.step(c, station)
            if isinstance(command, Update):
                updates.append((minute, command.alert))
    assert [m for m, _ in updates] == [13]  # ten minutes after the stored update, then quiet
    ((_, alert),) = updates
    assert "hiện tại 9,8 cm (ổn định)" in alert.message_vi
    assert "đỉnh 52,4 cm lúc 07:03 30/09/2025" in alert.message_vi
    assert alert.severity is Severity.EXTREME
