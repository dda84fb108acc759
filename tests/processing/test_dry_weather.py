"""Flood depth without rain upstream: a sensor matter, failing safe to a flood alert."""

from __future__ import annotations

from ingest.wire import Quantity
from processing.dry_weather import DEPTH_WITHOUT_RAIN_RULE
from processing.lifecycle import Clear, Command, Raise
from tests.processing.test_engine import engine, reading

HOURS = 60  # minutes


def raised(commands: list[Command]) -> list[str]:
    return [c.alert.rule for c in commands if isinstance(c, Raise)]


def dry_day(minutes: int, *, gauge: bool = True) -> list:  # type: ignore[type-arg]
    out = []
    for m in range(minutes):
        if gauge:
            out.append(reading("rg-a", Quantity.RAINFALL, 0.0, m))
        out.append(reading("fd-a", Quantity.WATER_DEPTH, 0.1 * (m % 2), m))
    return out


def test_a_depth_rising_on_a_dry_day_is_a_sensor_matter_until_rain_comes() -> None:
    e = engine()
    e.process(dry_day(7 * HOURS))
    # the sensor drifts up past the flood level (1.5 cm/h) while the gauge measures nothing
    start = 7 * HOURS
    # (a drizzle: a 0.2 mm tip every ten minutes, 7 mm in six hours, cannot flood a street)
    drift = [
        reading("rg-a", Quantity.RAINFALL, 0.2 if m % 10 == 0 else 0.0, start + m)
        for m in range(10 * HOURS)
    ]
    drift += [
        reading("fd-a", Quantity.WATER_DEPTH, 0.025 * m, start + m) for m in range(10 * HOURS)
    ]
    commands = e.process(drift).commands
    assert DEPTH_WITHOUT_RAIN_RULE in raised(commands)
    assert "flood_depth" not in raised(commands)
    alert = next(c.alert for c in commands if isinstance(c, Raise))
    assert "không đủ gây ngập" in alert.message_vi
    assert "too little to flood" in alert.message_en
    assert alert.category == "sensor_health"
    # rain at the gauge, the water keeps rising: a real flood alert, the suspicion clears
    start += 10 * HOURS
    storm = [reading("rg-a", Quantity.RAINFALL, 2.0, start + m) for m in range(10)]
    storm += [reading("fd-a", Quantity.WATER_DEPTH, 15.0 + m, start + m) for m in range(10)]
    commands = e.process(storm).commands
    assert "flood_depth" in raised(commands)
    cleared = [c.dedup_key for c in commands if isinstance(c, Clear)]
    assert f"{DEPTH_WITHOUT_RAIN_RULE}:fd-a" in cleared


def test_without_a_reporting_gauge_a_flood_is_a_flood() -> None:
    e = engine()
    e.process(dry_day(7 * HOURS, gauge=False))  # the gauge is silent: nothing is known
    start = 7 * HOURS
    rise = [reading("fd-a", Quantity.WATER_DEPTH, 0.5 * m, start + m) for m in range(40)]
    assert "flood_depth" in raised(e.process(rise).commands)


def test_a_flood_outlasting_the_rain_stays_a_flood() -> None:
    e = engine()
    wet = []
    for m in range(2 * HOURS):
        wet.append(reading("rg-a", Quantity.RAINFALL, 2.0 if m < 60 else 0.0, m))
        wet.append(reading("fd-a", Quantity.WATER_DEPTH, min(30.0, 0.5 * m), m))
    assert "flood_depth" in raised(e.process(wet).commands)
    # the street stays flooded for eight more dry hours: the open alert follows the depth
    later = []
    for m in range(2 * HOURS, 10 * HOURS):
        later.append(reading("rg-a", Quantity.RAINFALL, 0.0, m))
        later.append(
            reading("fd-a", Quantity.WATER_DEPTH, 30.0 + (10.0 if m > 9 * HOURS else 0), m)
        )
    commands = e.process(later).commands
    assert DEPTH_WITHOUT_RAIN_RULE not in raised(commands)
    assert e.dry.demoted == 0
