"""VN_AQI, Decision 1459/QĐ-TCMT (12 Nov 2019): hourly (NowCast) and daily, per station.

Breakpoints (Bảng 2), NowCast, O3 and daily rules as in the project's domain reference
§1.3-1.6. Conventions where the decision is silent (tagged [U] there, chosen here):

- concentrations are µg/m³ (CO too); negative means are clamped to 0;
- sub-indices are kept as floats; the station index is their maximum, rounded half-up once
  (the decision's worked example "NO2 118.7 -> 60" is inconsistent with its other examples:
  its exact sub-index is 59.35, published here as 59);
- an index that cannot be computed is ``None`` with a reason, never 0;
- daily statistics need ``min_hours`` valid hours of 24 (default 18) and 8-hour means need
  6 of 8 (common practice, not 1459).

>>> round(sub_index(Pollutant.PM25, 55.7), 2), round_aqi(109.5)
(109.5, 110)
>>> r = hourly_aqi({"pm25": [20.3, 20.3], "no2": [118.7], "o3": [136.1]})
>>> r.value, r.dominant, r.level.name_vi
(59, <Pollutant.NO2: 'no2'>, 'Trung bình')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Literal

__all__ = [
    "AQI_BREAKS",
    "BREAKPOINTS",
    "LEVELS",
    "AqiLevel",
    "AqiResult",
    "LevelInfo",
    "Pollutant",
    "daily_aqi",
    "eight_hour_means",
    "hourly_aqi",
    "level_of",
    "nowcast",
    "round_aqi",
    "sub_index",
]


class Pollutant(StrEnum):
    """The six VN_AQI parameters; values match :class:`contract.Quantity` names."""

    PM25 = "pm25"
    PM10 = "pm10"
    O3 = "o3"
    NO2 = "no2"
    SO2 = "so2"
    CO = "co"


Column = Literal["1h", "8h"]

AQI_BREAKS: Final = (0, 50, 100, 150, 200, 300, 400, 500)
"""Iᵢ of Bảng 2."""

BREAKPOINTS: Final[Mapping[tuple[Pollutant, Column], tuple[float, ...]]] = {
    (Pollutant.O3, "1h"): (0, 160, 200, 300, 400, 800, 1000, 1200),
    (Pollutant.O3, "8h"): (0, 100, 120, 170, 210, 400),
    (Pollutant.CO, "1h"): (0, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000, 150_000),
    (Pollutant.SO2, "1h"): (0, 125, 350, 550, 800, 1600, 2100, 2630),
    (Pollutant.NO2, "1h"): (0, 100, 200, 700, 1200, 2350, 3100, 3850),
    (Pollutant.PM10, "1h"): (0, 50, 150, 250, 350, 420, 500, 600),
    (Pollutant.PM25, "1h"): (0, 25, 50, 80, 150, 250, 350, 500),
}
"""BPᵢ of Bảng 2 in µg/m³; PM and CO/SO2/NO2 use the same column for hourly and daily."""

_O3_8H_LIMIT: Final = 400.0
_PM: Final = (Pollutant.PM25, Pollutant.PM10)


class AqiLevel(StrEnum):
    """The six VN_AQI levels."""

    GOOD = "good"
    MODERATE = "moderate"
    POOR = "poor"
    BAD = "bad"
    VERY_BAD = "very_bad"
    HAZARDOUS = "hazardous"


@dataclass(frozen=True, slots=True)
class LevelInfo:
    """Names and colour of one VN_AQI level (Decision 1459, §1.2)."""

    level: AqiLevel
    low: int
    high: int
    name_vi: str
    name_en: str
    colour_vi: str
    rgb: tuple[int, int, int]
    hex: str


LEVELS: Final = (
    LevelInfo(AqiLevel.GOOD, 0, 50, "Tốt", "Good", "Xanh", (0, 228, 0), "#00E400"),
    LevelInfo(
        AqiLevel.MODERATE, 51, 100, "Trung bình", "Moderate", "Vàng", (255, 255, 0), "#FFFF00"
    ),
    LevelInfo(AqiLevel.POOR, 101, 150, "Kém", "Poor", "Da cam", (255, 126, 0), "#FF7E00"),
    LevelInfo(AqiLevel.BAD, 151, 200, "Xấu", "Bad", "Đỏ", (255, 0, 0), "#FF0000"),
    LevelInfo(AqiLevel.VERY_BAD, 201, 300, "Rất xấu", "Very bad", "Tím", (143, 63, 151), "#8F3F97"),
    LevelInfo(
        AqiLevel.HAZARDOUS, 301, 500, "Nguy hại", "Hazardous", "Nâu", (126, 0, 35), "#7E0023"
    ),
)


def level_of(aqi: int) -> LevelInfo:
    """The level of a published (integer) AQI; above 500 is still hazardous."""
    for info in LEVELS:
        if aqi <= info.high:
            return info
    return LEVELS[-1]


def round_aqi(value: float) -> int:
    """Round half-up to an integer (no banker's rounding; 109.5 -> 110)."""
    return math.floor(round(value, 9) + 0.5)


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def sub_index(
    pollutant: Pollutant, concentration: float | None, column: Column = "1h"
) -> float | None:
    """AQIx by linear interpolation in Bảng 2 (exact float; None when not computable).

    ``column`` selects O3's 8-hour column; other pollutants have one column. An O3 8-hour
    mean above 400 µg/m³ has no 8-hour sub-index (§1.6: use the 1-hour one).

    >>> sub_index(Pollutant.O3, 400.0, "8h"), sub_index(Pollutant.O3, 400.5, "8h")
    (300.0, None)
    """
    if concentration is None or not math.isfinite(concentration):
        return None
    if column == "8h" and pollutant is not Pollutant.O3:
        column = "1h"
    c = max(0.0, float(concentration))
    points = BREAKPOINTS[(pollutant, column)]
    if column == "8h" and c > _O3_8H_LIMIT:
        return None
    if c >= points[-1]:
        return float(AQI_BREAKS[len(points) - 1])
    for i in range(len(points) - 1):
        low, high = points[i], points[i + 1]
        if low <= c <= high:
            return (AQI_BREAKS[i + 1] - AQI_BREAKS[i]) / (high - low) * (c - low) + AQI_BREAKS[i]
    return None  # unreachable: the segments cover [0, last breakpoint]


def nowcast(hourly_newest_first: Sequence[float | None]) -> float | None:
    """NowCast of PM2.5/PM10 from the last 12 hourly means, newest (c₁) first.

    Needs at least two of c₁, c₂, c₃; missing hours weigh 0; ``w = max(w*, 0.5)`` with
    ``w* = Cmin / Cmax`` over the hours present; normalised weights (§1.5).

    >>> round(nowcast([20.6, 19.6, 22.4, 20.3, 16.5, 19.0, 16.5, 19.5, 23.5, 20.5, 24.7, 26.9]), 2)
    20.27
    >>> nowcast([None, 30.0, None, 25.0]) is None
    True
    """
    hours = list(hourly_newest_first[:12])
    if sum(_usable(c) for c in hours[:3]) < 2:
        return None
    present = [
        (i, max(0.0, float(c))) for i, c in enumerate(hours) if c is not None and math.isfinite(c)
    ]
    c_max = max(c for _, c in present)
    if c_max == 0.0:
        return 0.0
    w_star = min(c for _, c in present) / c_max
    w = 0.5 if w_star <= 0.5 else w_star
    numerator = sum(w**i * c for i, c in present)
    denominator = sum(w**i for i, _ in present)
    return numerator / denominator


@dataclass(frozen=True, slots=True)
class AqiResult:
    """A station's VN_AQI for one hour or one day.

    Args:
        kind: ``hourly`` or ``daily``.
        value: the published integer index, or None when not computed.
        exact: the maximum sub-index before rounding.
        dominant: the pollutant with the highest sub-index (the "main pollutant").
        sub_indices: every sub-index computed (floats).
        concentrations: the concentration each sub-index used (NowCast, 1-h mean, 24-h mean,
            daily maximum...), µg/m³; O3 daily keys are ``o3_1h``/``o3_8h``.
        reason: why ``value`` is None.
    """

    kind: Literal["hourly", "daily"]
    value: int | None
    exact: float | None
    dominant: Pollutant | None
    sub_indices: Mapping[Pollutant, float] = field(default_factory=dict)
    concentrations: Mapping[str, float] = field(default_factory=dict)
    reason: str | None = None

    @property
    def level(self) -> LevelInfo | None:
        """Names and colour of the published value."""
        return None if self.value is None else level_of(self.value)


def _combine(
    kind: Literal["hourly", "daily"], subs: dict[Pollutant, float], used: dict[str, float]
) -> AqiResult:
    if not any(p in subs for p in _PM):
        reason = "no PM2.5 or PM10 sub-index: VN_AQI is not published without one"
        return AqiResult(kind, None, None, None, subs, used, reason)
    dominant = max(Pollutant, key=lambda p: subs.get(p, -1.0))  # ties: first in enum order
    exact = subs[dominant]
    return AqiResult(kind, round_aqi(exact), exact, dominant, subs, used)


def _as_pollutant_map(
    series: Mapping[Pollutant, Sequence[float | None]] | Mapping[str, Sequence[float | None]],
) -> dict[Pollutant, Sequence[float | None]]:
    return {Pollutant(str(key)): values for key, values in series.items()}


def hourly_aqi(
    hourly_means: Mapping[Pollutant, Sequence[float | None]] | Mapping[str, Sequence[float | None]],
) -> AqiResult:
    """Hourly VN_AQI from hourly means, each pollutant's series **newest first**.

    PM2.5/PM10 use the NowCast of their last 12 hours; O3 (1-h column), NO2, SO2 and CO the
    current hour's mean.
    """
    subs: dict[Pollutant, float] = {}
    used: dict[str, float] = {}
    for pollutant, series in _as_pollutant_map(hourly_means).items():
        c = nowcast(series) if pollutant in _PM else (series[0] if series else None)
        value = sub_index(pollutant, c)
        if value is not None and c is not None:
            subs[pollutant], used[pollutant.value] = value, c
    return _combine("hourly", subs, used)


def eight_hour_means(
    hourly_chronological: Sequence[float | None], min_hours: int = 6
) -> list[float | None]:
    """Rolling 8-hour means, one per hour (the mean of that hour and the 7 before it).

    A window with fewer than ``min_hours`` valid hours (including windows that reach back
    before the series starts) gives None.
    """
    out: list[float | None] = []
    for end in range(len(hourly_chronological)):
        window = hourly_chronological[max(0, end - 7) : end + 1]
        valid = [float(c) for c in window if c is not None and math.isfinite(c)]
        out.append(sum(valid) / len(valid) if len(valid) >= min_hours else None)
    return out


def _valid(values: Sequence[float | None]) -> list[float]:
    return [max(0.0, float(c)) for c in values if c is not None and math.isfinite(c)]


def daily_aqi(
    hourly_means: Mapping[Pollutant, Sequence[float | None]] | Mapping[str, Sequence[float | None]],
    *,
    min_hours: int = 18,
    min_hours_8h: int = 6,
) -> AqiResult:
    """Daily VN_AQI from hourly means in **chronological** order ending with the day.

    The day is the last 24 values (hour-ending 01:00 .. 00:00 next day). O3's series may
    carry 7 more hours before the day so its first 8-hour means are complete. PM2.5/PM10
    use the 24-h mean, NO2/SO2/CO the daily maximum 1-h mean, O3 the larger of the 1-h and
    8-h sub-indices of the daily maxima (8-h skipped above 400 µg/m³).
    """
    subs: dict[Pollutant, float] = {}
    used: dict[str, float] = {}
    for pollutant, series in _as_pollutant_map(hourly_means).items():
        day = _valid(series[-24:])
        if len(day) < min_hours:
            continue
        if pollutant in _PM:
            c = sum(day) / len(day)
            value = sub_index(pollutant, c)
            used[pollutant.value] = c
        elif pollutant is Pollutant.O3:
            value = _daily_o3(series, max(day), used, min_hours_8h)
        else:
            c = max(day)
            value = sub_index(pollutant, c)
            used[pollutant.value] = c
        if value is not None:
            subs[pollutant] = value
    return _combine("daily", subs, used)


def _daily_o3(
    series: Sequence[float | None], max_1h: float, used: dict[str, float], min_8h: int
) -> float | None:
    used["o3_1h"] = max_1h
    value = sub_index(Pollutant.O3, max_1h, "1h")
    means = [m for m in eight_hour_means(series, min_8h)[-24:] if m is not None]
    if means:
        used["o3_8h"] = max(means)
        eight = sub_index(Pollutant.O3, max(means), "8h")
        if eight is not None and (value is None or eight > value):
            value = eight
    return value
