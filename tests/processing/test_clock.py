"""Device clocks out of step with the fleet: steady offsets are clocks, backlogs are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from contract import Domain, Quantity, Reading, Registry, Sensor, Station, StationId
from processing.alerts import Severity
from processing.alerts.lifecycle import Clear, Lifecycle, Raise
from processing.conditions.base import Condition
from processing.conditions.clock import CLOCK_RULE, ClockWatch
from processing.engine import Engine

T0 = datetime(2025, 11, 12, 3, 0, tzinfo=UTC)
FLEET = [f"aq-{i}" for i in range(12)]
STATIONS = {
    s: Station(
        StationId(s),
        Domain.AIR,
        f"Trạm {i}",
        "Cầu Giấy",
        21.0 + 0.01 * i,
        105.8,
        "aq",
        (Sensor(Quantity.PM25, 60.0, 0.0, 1000.0),),
    )
    for i, s in enumerate(FLEET)
}


def arrivals(
    minutes: int,
    skew_s: dict[str, float] | None = None,
    *,
    latency_s: float = 5.0,
    seed: int = 0,
) -> list[tuple[float, Reading]]:
    """Every station sends each minute, stamped with its clock; (arrival time, reading)."""
    rng = np.random.default_rng(seed)
    skew_s = skew_s or {}
    out = []
    for m in range(minutes):
        for s in FLEET:
            true = T0 + timedelta(minutes=m, seconds=float(rng.uniform(0, 60)))
            stamp = true + timedelta(seconds=skew_s.get(s, 0.0))
            arrive = (true - T0).total_seconds() + float(rng.uniform(0, latency_s))
            out.append((arrive, Reading(StationId(s), Quantity.PM25, 30.0, stamp, stamp)))
    return out


def feed(
    watch: ClockWatch, stream: list[tuple[float, Reading]], batch: int = 20
) -> list[Condition]:
    ordered = [r for _, r in sorted(stream, key=lambda pair: pair[0])]
    found: list[Condition] = []
    for start in range(0, len(ordered), batch):
        open_keys = {c.dedup_key for c in found if c.severity is not None}
        found += watch.observe(ordered[start : start + batch], STATIONS, open_keys)
    return found


def abnormal(found: list[Condition]) -> dict[str, list[Condition]]:
    out: dict[str, list[Condition]] = {}
    for c in found:
        if c.severity is not None:
            out.setdefault(str(c.station_id), []).append(c)
    return out


@pytest.mark.parametrize(
    ("skew_s", "vi", "en", "span"),
    [(-900.0, "chậm", "slow", "15 min"), (240.0, "nhanh", "fast", "4 min"),
     (7 * 3600.0, "nhanh", "fast", "7 h")],
)  # fmt: skip
def test_a_steady_clock_error_is_called_with_its_size(
    skew_s: float, vi: str, en: str, span: str
) -> None:
    found = abnormal(feed(ClockWatch(), arrivals(30, {"aq-3": skew_s})))
    assert set(found) == {"aq-3"}
    first = found["aq-3"][0]
    assert first.dedup_key == f"{CLOCK_RULE}:aq-3"
    assert first.category == "sensor_health"
    assert first.severity is Severity.MINOR
    assert first.value == pytest.approx(skew_s / 60.0, abs=1.0)
    assert first.details["offset_s"] == pytest.approx(skew_s, abs=60.0)
    title_vi, title_en, message_vi, message_en = first.texts
    assert title_vi == "Đồng hồ thiết bị lệch: Trạm 3"
    assert title_en == "Device clock off: Trạm 3"
    assert f"chạy {vi}" in message_vi
    assert f"about {span} {en}" in message_en
    assert "NTP" in message_en
    # the alert's event time is the fleet's, not the device's wrong clock
    fleet_time = first.at
    assert T0 < fleet_time < T0 + timedelta(minutes=10)


def test_it_takes_five_steady_messages_before_a_verdict() -> None:
    stream = arrivals(30, {"aq-3": -900.0})
    found = abnormal(feed(ClockWatch(), stream))
    # aq-3's fifth message is its first judged: about minute 4, never earlier
    first = found["aq-3"][0].at
    assert T0 + timedelta(minutes=3) < first < T0 + timedelta(minutes=6)


def test_latency_jitter_and_a_minute_off_clock_are_not_clock_errors() -> None:
    stream = arrivals(60, {"aq-5": 60.0}, latency_s=45.0, seed=4)
    assert not abnormal(feed(ClockWatch(), stream, batch=7))


def test_a_backlog_uploaded_after_an_outage_is_not_a_clock_error() -> None:
    # aq-7 loses its link from minute 10 to 40 and then uploads the 30 buffered messages
    # at once; its clock is right.
    stream = []
    for arrive, r in arrivals(60):
        minute = (r.measured_at - T0).total_seconds() / 60.0
        if r.station_id == "aq-7" and 10 <= minute < 40:
            arrive = 40 * 60.0 + minute / 100.0
        stream.append((arrive, r))
    assert not abnormal(feed(ClockWatch(), stream))


def test_a_fast_sensors_backlog_is_not_a_clock_error() -> None:
    # aq-8 measures every 10 s; after 30 minutes offline its 180 buffered messages arrive
    # within a few seconds: five of them agree to within a minute, yet the fleet's time has
    # hardly moved while they came, so they are one sample, not five.
    stream = arrivals(60)
    for k in range(180):
        at = T0 + timedelta(minutes=10, seconds=10 * k)
        arrive = 40 * 60.0 + k / 50.0
        stream.append((arrive, Reading(StationId("aq-8"), Quantity.PM25, 30.0, at, at)))
    assert not abnormal(feed(ClockWatch(), stream))


def test_the_alert_clears_once_the_clock_is_set_right() -> None:
    # skewed for the first 30 minutes, right afterwards
    stream = []
    for arrive, r in arrivals(60):
        if r.station_id == "aq-2" and arrive < 30 * 60:
            at = r.measured_at - timedelta(minutes=20)
            r = Reading(r.station_id, r.quantity, r.value, at, at)
        stream.append((arrive, r))
    found = feed(ClockWatch(), stream)
    mine = [c for c in found if c.station_id == "aq-2"]
    assert mine[0].severity is not None
    clears = [c for c in mine if c.severity is None]
    assert clears
    assert clears[0].normal
    assert clears[0].at > T0 + timedelta(minutes=30)
    assert all(c.severity is None for c in mine[mine.index(clears[0]) :])


def test_a_small_fleet_has_no_reference() -> None:
    few = [(a, r) for a, r in arrivals(30, {"aq-1": -900.0}) if r.station_id in FLEET[:4]]
    assert not feed(ClockWatch(), few)


def test_the_engine_raises_and_clears_a_clock_alert() -> None:
    engine = Engine(Lifecycle(clear_after=3, cooldown_s=600))
    engine.use(Registry(STATIONS))
    stream = []
    for arrive, r in arrivals(90, seed=2):
        if r.station_id == "aq-9" and 20 * 60 <= arrive < 60 * 60:
            at = r.measured_at + timedelta(minutes=4)
            r = Reading(r.station_id, r.quantity, r.value, at, at)
        stream.append((arrive, r))
    ordered = [r for _, r in sorted(stream, key=lambda pair: pair[0])]
    commands = []
    for start in range(0, len(ordered), 12):
        commands += engine.process(ordered[start : start + 12]).commands
    mine = [c for c in commands if isinstance(c, Raise | Clear) and "clock_skew" in (
        c.alert.dedup_key if isinstance(c, Raise) else c.dedup_key)]  # fmt: skip
    assert [type(c).__name__ for c in mine] == ["Raise", "Clear"]
    raised = mine[0]
    assert isinstance(raised, Raise)
    assert raised.alert.rule == CLOCK_RULE
    assert T0 + timedelta(minutes=20) < raised.alert.observed_at < T0 + timedelta(minutes=28)
    assert "chạy nhanh khoảng 4 phút" in raised.alert.message_vi
