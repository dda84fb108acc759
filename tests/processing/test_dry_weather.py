"""Flood depth without rain upstream: a sensor matter, failing safe to a flood alert."""

from __future__ import annotations

import pytest

from contract import Quantity
from processing.alerts.lifecycle import Clear, Command, Raise
from processing.conditions.dry_weather import DEPTH_WITHOUT_RAIN_RULE, DryWeatherCheck
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
    # (a long drizzle: a 0.2 mm tip every five minutes, under 5 mm in any two hours)
    drift = [
        reading("rg-a", Quantity.RAINFALL, 0.2 if m % 5 == 0 else 0.0, start + m)
        for m in range(10 * HOURS)
    ]
    drift += [
        reading("fd-a", Quantity.WATER_DEPTH, 0.025 * m, start + m) for m in range(10 * HOURS)
    ]
    commands = e.process(drift).commands
    assert DEPTH_WITHOUT_RAIN_RULE in raised(commands)
    assert "flood_depth" not in raised(commands)
    alert = next(c.alert for c in commands if isinstance(c, Raise))
    assert "không ghi nhận mưa lớn" in alert.message_vi
    assert "no heavy rain" in alert.message_en
    assert alert.category == "sensor_health"
    # rain at the gauge, the water keeps rising: a real flood alert, the suspicion clears
    start += 10 * HOURS
    # (3 mm a minute: 30 mm by the time the water rises further)
    storm = [reading("rg-a", Quantity.RAINFALL, 3.0, start + m) for m in range(20)]
    storm += [
        reading("fd-a", Quantity.WATER_DEPTH, 15.0 + max(0, m - 10), start + m) for m in range(20)
    ]
    commands = e.process(storm).commands
    assert "flood_depth" in raised(commands)
    cleared = [c.dedup_key for c in commands if isinstance(c, Clear)]
    assert f"{DEPTH_WITHOUT_RAIN_RULE}:fd-a" in cleared


def test_isolated_spikes_on_a_dry_day_raise_no_sensor_suspicion() -> None:
    # Two glitches an hour apart, each one reading: the spike lane reports them; neither may
    # confirm the other as a "flood depth without rain" (each is held, then let go).
    e = engine()
    e.process(dry_day(7 * HOURS))
    start = 7 * HOURS
    later = []
    for m in range(2 * HOURS):
        later.append(reading("rg-a", Quantity.RAINFALL, 0.0, start + m))
        glitch = m in (10, 70)
        later.append(reading("fd-a", Quantity.WATER_DEPTH, 106.6 if glitch else 0.1 * (m % 2),
                             start + m))  # fmt: skip
    commands = []
    for i in range(0, len(later), 2):  # live: a reading of each a minute
        commands += e.process(later[i : i + 2]).commands
    assert DEPTH_WITHOUT_RAIN_RULE not in raised(commands)
    assert "flood_depth" not in raised(commands)
    assert raised(commands).count("spike") == 2


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


def test_heaviest_burst_is_the_largest_two_hour_total_in_the_window() -> None:
    check = DryWeatherCheck()
    rain = [0.0] * (8 * HOURS)
    for m in range(3 * HOURS, 3 * HOURS + 30):
        rain[m] = 1.0  # 30 mm in half an hour, five hours before the end
    for m in range(6 * HOURS, 8 * HOURS, 10):
        rain[m] = 0.2  # then a drizzle
    check.observe(reading("rg-a", Quantity.RAINFALL, r, m) for m, r in enumerate(rain))
    end = reading("rg-a", Quantity.RAINFALL, 0.0, 8 * HOURS - 1).measured_at.timestamp()
    assert check.heaviest_mm("rg-a", end) == 30.0
    assert check.heaviest_mm("rg-a", end + 4 * 3600) is None  # the gauge went quiet
    assert check.heaviest_mm("rg-b", end) is None  # never heard
    later = DryWeatherCheck(window_s=2 * 3600)
    later.observe(reading("rg-a", Quantity.RAINFALL, r, m) for m, r in enumerate(rain))
    assert later.heaviest_mm("rg-a", end) == pytest.approx(2.4)  # only the drizzle is recent


def test_a_gauge_glitch_does_not_make_a_dry_day_wet() -> None:
    # sensor-faults: rg-ha-dong read 24 mm in one minute (a spike), and a drifting depth
    # sensor downstream then raised a real flood alert two hours later
    e = engine()
    e.process(dry_day(7 * HOURS))
    start = 7 * HOURS
    later = []
    for m in range(3 * HOURS):
        later.append(reading("rg-a", Quantity.RAINFALL, 24.0 if m == 10 else 0.0, start + m))
        later.append(reading("fd-a", Quantity.WATER_DEPTH, 0.1 * m, start + m))
    commands = e.process(later).commands
    assert DEPTH_WITHOUT_RAIN_RULE in raised(commands)
    assert "flood_depth" not in raised(commands)
    at = later[-1].measured_at.timestamp()
    assert e.dry.heaviest_mm("rg-a", at) == pytest.approx(200.0 / 60.0)  # the cap, 1 minute
