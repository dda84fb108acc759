"""Live derived series: hourly VN_AQI rows and flood early warnings."""

from datetime import UTC, datetime, timedelta

from contract import Domain, Quantity, Reading, Sensor, Station, StationId
from processing.alerts import Severity
from processing.conditions.forecasts import ForecastSource
from processing.derived import DerivedSeries

T0 = datetime(2025, 9, 30, 0, 0, tzinfo=UTC)
HOTSPOT = Station(StationId("fd-thai-ha"), Domain.FLOOD, "Tây Sơn × Thái Hà", "Đống Đa", 21.01,
                  105.82, "flood_depth", attributes={"upstream_gauge": "rg-lang"})  # fmt: skip


def reading(station: str, quantity: Quantity, minute: float, value: float) -> Reading:
    at = T0 + timedelta(minutes=minute)
    return Reading(StationId(station), quantity, value, at, at)


def test_hourly_vn_aqi_rows_follow_the_decision() -> None:
    derived = DerivedSeries()
    pm25 = [26.9, 24.7, 20.5, 23.5, 19.5, 16.5, 19.0, 16.5, 20.3, 22.4, 19.6, 20.6]  # §1.7
    sensors = {("aq-x", Quantity.PM25): Sensor(Quantity.PM25, 600.0, None, None)}
    rows = []
    for hour, mean in enumerate([*pm25, 20.0]):
        readings = [
            reading("aq-x", Quantity.PM25, hour * 60 + m, mean) for m in (5, 15, 25, 35, 45, 55)
        ]
        rows += derived.observe(readings, sensors)
    final = rows[-1]  # closed by the 13th hour's first reading: the hour of the last example
    assert (final.index, final.value, final.dominant) == ("VN_AQI", 41.0, "pm25")
    assert final.level == "Tốt / Good"
    assert final.time == T0 + timedelta(hours=12)  # hour-ending label


def test_flood_warning_comes_before_the_level_is_crossed() -> None:
    derived = DerivedSeries()
    derived.link([HOTSPOT])
    forecasts = ForecastSource(derived, lead_time_s=1800)
    warned_at = crossed_at = None
    for minute in range(0, 60):
        depth = max(0.0, (minute - 10) * 0.8)  # rising 48 cm/h after minute 10
        batch = [reading("rg-lang", Quantity.RAINFALL, minute, 2.0 if minute >= 5 else 0.0),
                 reading("fd-thai-ha", Quantity.WATER_DEPTH, minute, depth)]  # fmt: skip
        derived.observe(batch, {})
        for cond in forecasts.forecasts(batch, {"fd-thai-ha": HOTSPOT}, set()):
            if cond.severity is Severity.SEVERE and warned_at is None:
                warned_at = minute
                assert "30 cm" in cond.texts[0]
                assert "giờ Hà Nội" in cond.texts[2]
        if depth >= 30 and crossed_at is None:
            crossed_at = minute
    assert warned_at is not None
    assert crossed_at is not None
    assert crossed_at - warned_at >= 10  # at least ten minutes of lead time
