"""QCVN 05:2023/BTNMT ambient-air limits (Circular 01/2023/TT-BTNMT, in force 12 Sep 2023).

Table 1 (basic parameters), µg/Nm³, domain reference §1.11. The PM2.5 24-hour limit is 50
until 31 Dec 2025 and 45 from 1 Jan 2026 (one transcription puts the 45 in the annual
column; we follow the two careful ones [P]). A value *exceeds* a limit when it is strictly
greater than it.

>>> limit_for(Parameter.PM25, Period.H24, date(2025, 12, 31)).value_ug_m3
50.0
>>> e = check(Parameter.PM25, Period.H24, 47.0, date(2026, 1, 1))
>>> e.exceeded, e.limit.value_ug_m3, round(e.ratio, 3)
(True, 45.0, 1.044)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from processing.indices.vn_aqi import eight_hour_means

__all__ = [
    "IN_FORCE",
    "LIMITS",
    "Exceedance",
    "Limit",
    "Parameter",
    "Period",
    "check",
    "check_hourly_series",
    "limit_for",
]

IN_FORCE: Final = date(2023, 9, 12)
_PM25_TIGHTER_FROM: Final = date(2026, 1, 1)


class Parameter(StrEnum):
    """Table 1 parameters; values match :class:`contract.Quantity` names where one exists."""

    SO2 = "so2"
    CO = "co"
    NO2 = "no2"
    O3 = "o3"
    TSP = "tsp"
    PM10 = "pm10"
    PM25 = "pm25"


class Period(StrEnum):
    """Averaging periods of Table 1."""

    H1 = "1h"
    H8 = "8h"
    H24 = "24h"
    YEAR = "year"


@dataclass(frozen=True, slots=True)
class Limit:
    """One cell of Table 1.

    Args:
        parameter: the pollutant.
        period: its averaging period.
        value_ug_m3: the limit, µg/Nm³.
        valid_from: first day the limit applies (inclusive), None = since the regulation.
        valid_until: first day it no longer applies (exclusive), None = open-ended.
    """

    parameter: Parameter
    period: Period
    value_ug_m3: float
    valid_from: date | None = None
    valid_until: date | None = None

    def applies_on(self, day: date) -> bool:
        """Whether this limit is the one in force on ``day``."""
        after_start = self.valid_from is None or day >= self.valid_from
        before_end = self.valid_until is None or day < self.valid_until
        return after_start and before_end


def _limits() -> tuple[Limit, ...]:
    p, h1, h8, h24, yr = Parameter, Period.H1, Period.H8, Period.H24, Period.YEAR
    return (
        Limit(p.SO2, h1, 350.0),
        Limit(p.SO2, h24, 125.0),
        Limit(p.SO2, yr, 50.0),
        Limit(p.CO, h1, 30_000.0),
        Limit(p.CO, h8, 10_000.0),
        Limit(p.NO2, h1, 200.0),
        Limit(p.NO2, h24, 100.0),
        Limit(p.NO2, yr, 40.0),
        Limit(p.O3, h1, 200.0),
        Limit(p.O3, h8, 120.0),
        Limit(p.TSP, h1, 300.0),
        Limit(p.TSP, h24, 200.0),
        Limit(p.TSP, yr, 100.0),
        Limit(p.PM10, h24, 100.0),
        Limit(p.PM10, yr, 50.0),
        Limit(p.PM25, h24, 50.0, valid_until=_PM25_TIGHTER_FROM),
        Limit(p.PM25, h24, 45.0, valid_from=_PM25_TIGHTER_FROM),
        Limit(p.PM25, yr, 25.0),
    )


LIMITS: Final = _limits()


def limit_for(parameter: Parameter, period: Period, on: date) -> Limit | None:
    """The limit in force on ``on`` for a parameter and period, or None (no such cell)."""
    for limit in LIMITS:
        if limit.parameter is parameter and limit.period is period and limit.applies_on(on):
            return limit
    return None


@dataclass(frozen=True, slots=True)
class Exceedance:
    """The comparison of one averaged value with its QCVN 05:2023 limit.

    Args:
        parameter: the pollutant.
        period: the averaging period of ``value``.
        value: the averaged concentration, µg/Nm³.
        limit: the limit in force.
        exceeded: ``value > limit``.
        ratio: ``value / limit``.
    """

    parameter: Parameter
    period: Period
    value: float
    limit: Limit
    exceeded: bool
    ratio: float

    @property
    def text_vi(self) -> str:
        """Vietnamese summary for operators."""
        verdict = "vượt" if self.exceeded else "không vượt"
        return (
            f"{self.parameter.value.upper()} trung bình {self.period.value} {self.value:.1f} "
            f"µg/Nm³ {verdict} QCVN 05:2023 ({self.limit.value_ug_m3:g})"
        )

    @property
    def text_en(self) -> str:
        """English summary for operators."""
        verdict = "exceeds" if self.exceeded else "is within"
        return (
            f"{self.parameter.value.upper()} {self.period.value} mean {self.value:.1f} µg/Nm³ "
            f"{verdict} QCVN 05:2023 ({self.limit.value_ug_m3:g})"
        )


def check(parameter: Parameter, period: Period, value: float, on: date) -> Exceedance | None:
    """Compare an averaged value with the limit in force, or None when there is no limit."""
    limit = limit_for(parameter, period, on)
    if limit is None or not math.isfinite(value):
        return None
    ratio = value / limit.value_ug_m3
    return Exceedance(parameter, period, value, limit, value > limit.value_ug_m3, ratio)


def check_hourly_series(
    parameter: Parameter,
    hourly_chronological: Sequence[float | None],
    on: date,
    *,
    min_hours_24h: int = 18,
    min_hours_8h: int = 6,
) -> list[Exceedance]:
    """Check the latest 1-h, 8-h and 24-h means of an hourly series against every limit.

    Averages with too few valid hours are skipped (project convention [U], as for VN_AQI).
    """
    out: list[Exceedance] = []
    if hourly_chronological and (latest := hourly_chronological[-1]) is not None:
        out += [e for e in [check(parameter, Period.H1, latest, on)] if e is not None]
    eight = eight_hour_means(hourly_chronological, min_hours_8h)
    if eight and eight[-1] is not None:
        out += [e for e in [check(parameter, Period.H8, eight[-1], on)] if e is not None]
    day = [c for c in hourly_chronological[-24:] if c is not None and math.isfinite(c)]
    if len(day) >= min_hours_24h:
        mean = sum(day) / len(day)
        out += [e for e in [check(parameter, Period.H24, mean, on)] if e is not None]
    return out
