"""Scenarios: every bundled file loads, and each one shows what it promises."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from contract import Quantity
from simulators.errors import ScenarioError
from simulators.fleet import hanoi_fleet
from simulators.scenario import list_scenarios, load_scenario, parse_duration
from tests.simulators.helpers import run_scenario

Q = Quantity
HANOI = 7 * 3600


def local(year: int, month: int, day: int, hour: int = 0) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp() - HANOI


def test_all_bundled_scenarios_load() -> None:
    names = list_scenarios()
    assert {
        "demo",
        "typhoon-yagi",
        "storm-2025-09-30",
        "winter-pollution",
        "west-lake-2016",
        "traffic-incident",
        "quiet-week",
    } <= set(names)
    for name in names:
        scenario = load_scenario(name, hanoi_fleet())
        assert scenario.title_vi
        assert scenario.title_en
        assert scenario.description


def test_demo_floods_a_street_past_30_cm_within_an_hour_at_speed_60() -> None:
    start = datetime(2025, 11, 20, 2, 17, tzinfo=UTC)
    _, _, out = run_scenario("demo", ["fd-*", "aq-*"], start=start, hours=1)
    deepest = max(out.values(s, Q.WATER_DEPTH).max() for s, q in out.series if q is Q.WATER_DEPTH)
    assert deepest > 30  # 1 simulated hour = 60 real seconds at --speed 60
    pm = out.values("aq-hoan-kiem", Q.PM25)
    assert pm.mean() > 80  # VN_AQI above "Kém" (PM2.5 NowCast > 80 -> "Xấu")
    assert out.values("fd-van-quan", Q.WATER_DEPTH).max() < 5  # the rest reports normally
    assert out.values("aq-my-dinh", Q.PM25).mean() < 80


def test_storm_2025_09_30_floods_hotspots_from_the_morning_burst() -> None:
    _, _, out = run_scenario("storm-2025-09-30", ["rg-o-cho-dua", "fd-thai-ha", "fd-van-quan"])
    assert 500 < out.values("rg-o-cho-dua", Q.RAINFALL).sum() <= 527.5
    depth = out.values("fd-thai-ha", Q.WATER_DEPTH)
    times = out.times("fd-thai-ha", Q.WATER_DEPTH)
    assert depth[times < local(2025, 9, 30, 7)].max() < 3
    morning = (times >= local(2025, 9, 30, 9)) & (times < local(2025, 9, 30, 13))
    assert depth[morning].max() > 40
    floods = {e.station_id for e in out.labels("flood")}
    assert {"fd-thai-ha", "fd-van-quan"} <= floods
    low_basin = next(e for e in out.labels("flood") if e.station_id == "fd-van-quan")
    assert low_basin.end - low_basin.start > timedelta(hours=12)  # low basins drain slowly


def test_yagi_floods_on_the_first_evening() -> None:
    _, _, out = run_scenario("typhoon-yagi", ["fd-nguyen-khuyen", "rg-nguyen-khuyen"])
    floods = [e for e in out.labels("flood") if e.station_id == "fd-nguyen-khuyen"]
    assert floods
    assert floods[0].start.timestamp() < local(2024, 9, 8)
    assert len(out.labels("heavy_rain")) == 4


def test_west_lake_2016_bloom_then_oxygen_crash_before_dawn() -> None:
    _, _, out = run_scenario("west-lake-2016", ["wl-buoy-trich-sai"])
    station = "wl-buoy-trich-sai"
    times = out.times(station, Q.DISSOLVED_OXYGEN)
    oxygen = out.values(station, Q.DISSOLVED_OXYGEN)
    chl = out.values(station, Q.CHLOROPHYLL_A)
    bloom = (times >= local(2016, 9, 29)) & (times < local(2016, 9, 30))
    assert chl[bloom].max() > 100
    assert out.values(station, Q.PH)[bloom].max() > 8.8
    dawn = (times >= local(2016, 10, 1, 4)) & (times < local(2016, 10, 1, 10))
    assert oxygen[dawn].max() < 1.0  # < 1 mg/L by 04:00 and through the morning
    later = times >= local(2016, 10, 5)
    assert np.median(oxygen[later]) > 4.0  # recovered with aeration
    assert out.values(station, Q.AMMONIUM)[dawn].mean() > 1.0
    kinds = {e.kind for e in out.truth}
    assert {"algal_bloom", "oxygen_crash", "hypoxia"} <= kinds


def test_west_lake_buoys_measure_like_real_sondes() -> None:
    # Twelve days of the four buoys: whole NTU and uS/cm, heavy-tailed optical probes, a
    # few labelled glitches (debris on the optical window), no unlabelled jump of that size.
    _, _, out = run_scenario("west-lake-2016", ["wl-buoy-*"])
    turbidity = np.concatenate(
        [out.values(s, Q.TURBIDITY) for s in {str(e.station_id) for e in out.truth}
         if str(s).startswith("wl-buoy-")]
    )  # fmt: skip
    assert np.array_equal(turbidity, np.round(turbidity))
    glitches = [e for e in out.labels("spike") if str(e.station_id).startswith("wl-buoy-")]
    assert 4 <= len(glitches) <= 60  # about one per probe per five days
    assert {q for e in glitches for q in e.quantities} <= {Q.TURBIDITY, Q.CHLOROPHYLL_A}
    station = str(glitches[0].station_id)
    quantity = glitches[0].quantities[0]
    at = out.times(station, quantity) == glitches[0].start.timestamp()
    series = out.values(station, quantity)
    assert series[at][0] > 2.5 * np.median(series)


def test_winter_episode_raises_daily_pm25_to_100_200() -> None:
    _, begin, out = run_scenario("winter-pollution", ["aq-kim-lien"])
    times = out.times("aq-kim-lien", Q.PM25)
    pm = out.values("aq-kim-lien", Q.PM25)
    day = ((times - begin.timestamp()) // 86400).astype(int)
    daily = np.array([pm[day == d].mean() for d in range(10)])
    assert daily[:2].mean() < 90
    assert 100 < daily[3:6].mean() < 220
    assert daily[7] < 0.6 * daily[3:6].mean()  # washed out by the cold front
    assert len(out.labels("pollution_episode")) == 1


def test_traffic_incident_builds_a_queue_upstream_and_starves_downstream() -> None:
    _, _, out = run_scenario("traffic-incident", ["tr-nguyen-trai-*"])
    labels = {str(e.station_id): e for e in out.labels("traffic_incident")}
    assert set(labels) == {f"tr-nguyen-trai-{i}" for i in range(1, 5)}
    for station, label in labels.items():
        t = out.times(station, Q.SPEED)
        inside = (t >= label.start.timestamp() + 600) & (t <= label.end.timestamp() - 600)
        speed = out.values(station, Q.SPEED)[inside].mean()
        if station == "tr-nguyen-trai-4":
            assert speed > 30  # downstream: a trickle at free speed
            assert out.values(station, Q.FLOW_MOTORBIKE)[inside].mean() < 60
        else:
            assert speed < 12
            assert out.values(station, Q.OCCUPANCY)[inside].mean() > 50
    assert labels["tr-nguyen-trai-1"].start > labels["tr-nguyen-trai-2"].start  # queue grows back


def test_quiet_week_has_no_scripted_labels() -> None:
    scenario = load_scenario("quiet-week", hanoi_fleet())
    assert scenario.events == ()
    assert scenario.fault_rates.spike_rate == 0


def test_parse_duration_and_relative_starts() -> None:
    assert parse_duration("1d6h") == 108000
    assert parse_duration("90m") == 5400
    with pytest.raises(ScenarioError):
        parse_duration("soon")
    now = datetime(2025, 5, 1, 12, 34, 56, tzinfo=UTC)
    demo = load_scenario("demo", hanoi_fleet())
    assert demo.default_start(now) == datetime(2025, 5, 1, 6, 34, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nevents: [{kind: rain, duration: 1h, totals_mm: {rg-nowhere: 5}}]",
            "unknown station",
        ),
        ("name: x\nevents: [{kind: meteor}]", "unknown event kind"),
        ("name: x\nevents: [{kind: rain, totals_mm: {rg-lang: 5}}]", "missing field"),
        ("name: x\nstart: yesterday", "neither an ISO time"),
        ("name: x\nfaults: {rates: {spike_rate: 3}}", "shares"),
        (
            "name: x\nfaults: {scripted: [{kind: spike, station: rg-lang, duration: 1h}]}",
            "scripted",
        ),
        ("[1, 2", "not valid YAML"),
    ],
)
def test_bad_scenarios_are_refused_with_a_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(str(path), hanoi_fleet())


def test_unknown_scenario_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ScenarioError, match="demo"):
        load_scenario("nope", hanoi_fleet())
