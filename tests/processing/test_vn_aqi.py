"""VN_AQI (Decision 1459/QĐ-TCMT): worked examples, boundaries, NowCast, daily rules."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processing.indices.vn_aqi import (
    AQI_BREAKS,
    BREAKPOINTS,
    LEVELS,
    AqiLevel,
    Pollutant,
    daily_aqi,
    eight_hour_means,
    hourly_aqi,
    level_of,
    nowcast,
    round_aqi,
    sub_index,
)

# Decision 1459 worked example, PM2.5 hourly means 09:00 -> 20:00 (chronological).
PM25_0900_TO_2000 = [26.9, 24.7, 20.5, 23.5, 19.5, 16.5, 19.0, 16.5, 20.3, 22.4, 19.6, 20.6]


def test_nowcast_worked_example() -> None:
    value = nowcast(list(reversed(PM25_0900_TO_2000)))
    assert value is not None
    assert value == pytest.approx(20.27, abs=0.005)
    assert round(value, 1) == 20.3


def test_hourly_worked_example() -> None:
    assert sub_index(Pollutant.O3, 136.1) == pytest.approx(42.53, abs=0.005)
    assert sub_index(Pollutant.NO2, 118.7) == pytest.approx(59.35, abs=1e-9)
    assert sub_index(Pollutant.PM25, 20.3) == pytest.approx(40.6, abs=1e-9)
    result = hourly_aqi({"pm25": list(reversed(PM25_0900_TO_2000)), "no2": [118.7], "o3": [136.1]})
    assert result.kind == "hourly"
    assert result.sub_indices[Pollutant.PM25] == pytest.approx(40.54, abs=0.01)
    # The decision publishes 60, but its exact sub-index is 59.35: we round half-up once.
    assert result.value == 59
    assert result.dominant is Pollutant.NO2
    assert result.level is not None
    assert result.level.level is AqiLevel.MODERATE
    assert result.concentrations["pm25"] == pytest.approx(20.27, abs=0.005)


def test_daily_worked_example() -> None:
    assert sub_index(Pollutant.O3, 89.3, "8h") == pytest.approx(44.65, abs=1e-9)
    assert round_aqi(44.65) == 45
    assert sub_index(Pollutant.O3, 114.6) == pytest.approx(35.81, abs=0.005)
    assert round_aqi(35.8125) == 36
    assert sub_index(Pollutant.NO2, 130.8) == pytest.approx(65.4, abs=1e-9)
    assert sub_index(Pollutant.PM25, 55.7) == pytest.approx(109.5, abs=1e-9)
    # Build a day whose statistics are those of the example.
    o3 = [60.0] * 7 + [89.3] * 8 + [50.0] * 15 + [114.6]  # 7 h before the day, then 24 h
    no2 = [80.0] * 23 + [130.8]
    pm25 = [55.7] * 24
    result = daily_aqi({"o3": o3, "no2": no2, "pm25": pm25})
    assert result.kind == "daily"
    assert result.sub_indices[Pollutant.O3] == pytest.approx(44.65, abs=1e-9)
    assert result.sub_indices[Pollutant.NO2] == pytest.approx(65.4, abs=1e-9)
    assert result.value == 110
    assert result.dominant is Pollutant.PM25
    assert result.concentrations["o3_8h"] == pytest.approx(89.3)
    assert result.concentrations["o3_1h"] == pytest.approx(114.6)


@pytest.mark.parametrize(
    ("concentration", "expected"),
    [(0, 0), (25, 50), (50, 100), (80, 150), (150, 200), (250, 300), (350, 400), (500, 500),
     (600, 500), (12.5, 25), (65, 125), (300, 350), (425, 450)],
)  # fmt: skip
def test_pm25_boundaries(concentration: float, expected: float) -> None:
    assert sub_index(Pollutant.PM25, concentration) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("pollutant", "column", "concentration", "expected"),
    [
        (Pollutant.O3, "1h", 160, 50), (Pollutant.O3, "1h", 200, 100),
        (Pollutant.O3, "1h", 800, 300), (Pollutant.O3, "1h", 1200, 500),
        (Pollutant.O3, "8h", 100, 50), (Pollutant.O3, "8h", 120, 100),
        (Pollutant.O3, "8h", 210, 200), (Pollutant.O3, "8h", 400, 300),
        (Pollutant.PM10, "1h", 50, 50), (Pollutant.PM10, "1h", 420, 300),
        (Pollutant.PM10, "1h", 600, 500), (Pollutant.CO, "1h", 10_000, 50),
        (Pollutant.CO, "1h", 150_000, 500), (Pollutant.SO2, "1h", 550, 150),
        (Pollutant.SO2, "1h", 2630, 500), (Pollutant.NO2, "1h", 2350, 300),
        (Pollutant.NO2, "1h", 3850, 500), (Pollutant.NO2, "8h", 200, 100),
    ],
)  # fmt: skip
def test_breakpoint_boundaries(
    pollutant: Pollutant, column: str, concentration: float, expected: float
) -> None:
    assert sub_index(pollutant, concentration, column) == pytest.approx(expected)  # type: ignore[arg-type]


def test_o3_eight_hour_column_stops_at_400() -> None:
    assert sub_index(Pollutant.O3, 400.0001, "8h") is None
    o3 = [450.0] * 31
    result = daily_aqi({"o3": o3, "pm25": [10.0] * 24})
    # 8-h mean above 400: only the 1-h column counts (450 -> between 400 and 800).
    assert result.sub_indices[Pollutant.O3] == pytest.approx(212.5)


def test_contiguous_segments_agree_at_every_breakpoint() -> None:
    for (pollutant, column), points in BREAKPOINTS.items():
        for i, bp in enumerate(points):
            value = sub_index(pollutant, bp, column)
            assert value == pytest.approx(AQI_BREAKS[i])


@given(st.floats(min_value=0, max_value=2000, allow_nan=False))
def test_sub_index_is_monotone_and_bounded(c: float) -> None:
    for pollutant in (Pollutant.PM25, Pollutant.PM10, Pollutant.NO2):
        low = sub_index(pollutant, c)
        high = sub_index(pollutant, c + 1.0)
        assert low is not None
        assert high is not None
        assert 0 <= low <= high <= 500


def test_negative_and_missing_concentrations() -> None:
    assert sub_index(Pollutant.PM25, -3.0) == 0.0
    assert sub_index(Pollutant.PM25, math.nan) is None
    assert sub_index(Pollutant.PM25, None) is None


def test_nowcast_completeness_and_weights() -> None:
    assert nowcast([30.0, None, None, 10.0]) is None  # only 1 of the 3 latest hours
    assert nowcast([None, 30.0, 20.0]) is not None
    assert nowcast([0.0, 0.0, 0.0]) == 0.0
    # w* below 0.5 is floored at 0.5; normalised weights with a gap.
    value = nowcast([40.0, 10.0, None, 20.0])
    weights = [1.0, 0.5, 0.125]
    expected = (40.0 + 0.5 * 10.0 + 0.125 * 20.0) / sum(weights)
    assert value == pytest.approx(expected)
    # Only the 12 latest hours count.
    assert nowcast([10.0] * 12 + [1000.0]) == pytest.approx(10.0)


def test_no_pm_no_index() -> None:
    result = hourly_aqi({"no2": [300.0], "o3": [100.0]})
    assert result.value is None
    assert result.level is None
    assert result.reason is not None
    assert Pollutant.NO2 in result.sub_indices


def test_daily_completeness_rule() -> None:
    short = [40.0] * 17 + [None] * 7
    assert daily_aqi({"pm25": short}).value is None
    enough = [40.0] * 18 + [None] * 6
    assert daily_aqi({"pm25": enough}).value == 80


def test_eight_hour_means() -> None:
    series: list[float | None] = [float(i) for i in range(10)]
    means = eight_hour_means(series)
    assert means[:5] == [None] * 5  # fewer than 6 hours in the window
    assert means[5] == pytest.approx(2.5)
    assert means[9] == pytest.approx(5.5)


def test_rounding_is_half_up_once() -> None:
    assert [round_aqi(x) for x in (0.5, 1.5, 2.5, 109.5, 59.35, 59.5)] == [1, 2, 3, 110, 59, 60]


def test_levels_names_and_colours() -> None:
    values = (0, 50, 51, 100, 101, 150, 151, 200, 201, 300, 301, 500)
    assert [level_of(v).level for v in values] == [
        AqiLevel.GOOD, AqiLevel.GOOD, AqiLevel.MODERATE, AqiLevel.MODERATE, AqiLevel.POOR,
        AqiLevel.POOR, AqiLevel.BAD, AqiLevel.BAD, AqiLevel.VERY_BAD, AqiLevel.VERY_BAD,
        AqiLevel.HAZARDOUS, AqiLevel.HAZARDOUS,
    ]  # fmt: skip
    assert level_of(700).level is AqiLevel.HAZARDOUS
    assert [info.hex for info in LEVELS] == [
        "#00E400", "#FFFF00", "#FF7E00", "#FF0000", "#8F3F97", "#7E0023"
    ]  # fmt: skip
    assert LEVELS[3].name_vi == "Xấu"
    assert LEVELS[3].name_en == "Bad"


def test_dominant_pollutant_ties_prefer_pm25() -> None:
    result = hourly_aqi({"pm25": [25.0, 25.0], "pm10": [50.0, 50.0]})
    assert result.value == 50
    assert result.dominant is Pollutant.PM25
