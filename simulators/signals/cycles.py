"""Calendar, sun and climatology shapes for Hanoi (pure functions of unix seconds).

All inputs are numpy arrays of UTC unix seconds; Hanoi local time is UTC+7 all year (no
daylight saving). Monthly tables are interpolated smoothly between mid-month values.
Figures tagged [U] in shared/reference/domain.md are simulation defaults, not statistics.
"""

import numpy as np
import numpy.typing as npt

from contract import HANOI_UTC_OFFSET_S

__all__ = [
    "DAY_S",
    "HOUR_S",
    "LOCAL_OFFSET_S",
    "PM25_MONTHLY",
    "TEMPERATURE_MONTHLY",
    "local_hour",
    "local_weekday",
    "monthly",
    "pm_diurnal",
    "rush_profile",
    "solar_elevation_sin",
]

Array = npt.NDArray[np.float64]

HOUR_S = 3600.0
DAY_S = 86400.0
LOCAL_OFFSET_S = HANOI_UTC_OFFSET_S  # Asia/Ho_Chi_Minh (its home: contract.clock)

# domain.md §5.2, proposed monthly PM2.5 means [U].
PM25_MONTHLY = (70.0, 55.0, 50.0, 40.0, 30.0, 22.0, 20.0, 22.0, 28.0, 45.0, 60.0, 75.0)
# Hanoi air temperature monthly means, °C [U: ≈16–17 Jan, ≈29–30 Jul per domain.md §4.2].
TEMPERATURE_MONTHLY = (16.6, 17.5, 20.2, 24.0, 27.8, 29.6, 29.8, 29.2, 28.0, 25.3, 21.9, 18.3)
# Relative humidity monthly means, % [U].
HUMIDITY_MONTHLY = (80.0, 83.0, 86.0, 86.0, 80.0, 79.0, 80.0, 83.0, 80.0, 77.0, 75.0, 75.0)

# PM2.5 diurnal multiplier by local hour [U, domain.md §5.3: ≈1.3 at 06–08, ≈1.15 at 19–23,
# ≈0.6 at 14–15]; normalised to a daily mean of 1 below.
_PM_DIURNAL_RAW = np.array(
    [
        1.14,
        1.15,
        1.17,
        1.19,
        1.22,
        1.26,
        1.31,
        1.33,
        1.27,
        1.10,
        0.93,
        0.80,
        0.70,
        0.63,
        0.60,
        0.62,
        0.70,
        0.84,
        1.00,
        1.12,
        1.16,
        1.17,
        1.16,
        1.15,
    ]
)
_PM_DIURNAL = _PM_DIURNAL_RAW / _PM_DIURNAL_RAW.mean()

_MONTH_MID_DAY = np.array(
    [15.5, 45.0, 74.5, 105.0, 135.5, 166.0, 196.5, 227.5, 258.0, 288.5, 319.0, 349.5]
)
_YEAR_DAYS = 365.2425


def local_hour(t_s: Array) -> Array:
    """Hour of day in Hanoi, as a float in [0, 24)."""
    return np.mod(t_s + LOCAL_OFFSET_S, DAY_S) / HOUR_S


def local_weekday(t_s: Array) -> npt.NDArray[np.int64]:
    """Day of week in Hanoi, Monday = 0 (1970-01-01 was a Thursday)."""
    days = np.floor((t_s + LOCAL_OFFSET_S) / DAY_S).astype(np.int64)
    return np.mod(days + 3, 7)


def _day_of_year(t_s: Array) -> Array:
    # Days since 2000-01-01 local, folded onto the mean year: exact enough for climatology.
    days = (t_s + LOCAL_OFFSET_S - 946684800.0) / DAY_S
    return np.mod(days, _YEAR_DAYS)


def monthly(t_s: Array, table: tuple[float, ...]) -> Array:
    """Interpolate a 12-value monthly table smoothly (periodic) at the given times."""
    values = np.asarray(table, dtype=np.float64)
    x = np.concatenate(
        ([_MONTH_MID_DAY[-1] - _YEAR_DAYS], _MONTH_MID_DAY, [_MONTH_MID_DAY[0] + _YEAR_DAYS])
    )
    y = np.concatenate(([values[-1]], values, [values[0]]))
    return np.interp(_day_of_year(t_s), x, y)


def pm_diurnal(t_s: Array) -> Array:
    """PM2.5 diurnal multiplier (mean 1): high 02–08, lowest 14–15 (domain.md §5.3)."""
    hour = local_hour(t_s)
    x = np.arange(25, dtype=np.float64)
    y = np.append(_PM_DIURNAL, _PM_DIURNAL[0])
    return np.asarray(np.interp(hour, x, y), dtype=np.float64)


def rush_profile(t_s: Array) -> Array:
    """Traffic demand as a fraction of the weekday peak (domain.md §7.3).

    Weekdays peak around 07:45 and 17:45; Saturday is lighter, Sunday lighter still and
    without a morning rush; nights fall to a few percent.
    """
    hour = local_hour(t_s)
    weekday = local_weekday(t_s)
    base = 0.04 + 0.5 * _bump(hour, 12.5, 4.5, 2)  # daytime plateau
    morning = 0.55 * _bump(hour, 7.75, 1.2, 2)
    evening = 0.55 * _bump(hour, 17.75, 1.3, 2)
    night = 0.22 * _bump(hour, 20.5, 1.8, 2)  # evening leisure traffic
    weekday_demand = base + morning + evening + night
    saturday = base * 0.95 + 0.5 * morning + 0.75 * evening + 1.2 * night
    sunday = base * 0.85 + 0.15 * morning + 0.6 * evening + 1.2 * night
    return np.where(weekday < 5, weekday_demand, np.where(weekday == 5, saturday, sunday))


def _bump(hour: Array, centre: float, width: float, power: int) -> Array:
    distance = np.abs(np.mod(hour - centre + 12.0, 24.0) - 12.0)
    return np.asarray(np.exp(-0.5 * (distance / width) ** power), dtype=np.float64)


def solar_elevation_sin(t_s: Array, lat_deg: float = 21.03, lon_deg: float = 105.85) -> Array:
    """Sine of the sun's elevation (negative at night), from declination and hour angle."""
    doy = _day_of_year(t_s)
    declination = np.deg2rad(-23.44) * np.cos(2 * np.pi * (doy + 10.0) / _YEAR_DAYS)
    solar_hour = np.mod(t_s / HOUR_S + lon_deg / 15.0, 24.0)
    hour_angle = np.deg2rad(15.0 * (solar_hour - 12.0))
    lat = np.deg2rad(lat_deg)
    return np.asarray(
        np.sin(lat) * np.sin(declination) + np.cos(lat) * np.cos(declination) * np.cos(hour_angle),
        dtype=np.float64,
    )
