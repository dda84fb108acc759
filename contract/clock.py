"""Time: stored and passed in UTC, shown in Hanoi's zone; the one home of both.

Everything in code and storage is a tz-aware UTC ``datetime``; people read
Asia/Ho_Chi_Minh (UTC+7 all year, no daylight saving since 1975).

>>> from datetime import UTC, datetime
>>> t = datetime(2026, 9, 30, 6, 0, tzinfo=UTC)
>>> utc_iso(t), local_iso(t), hanoi_time(t)
('2026-09-30T06:00:00Z', '2026-09-30T13:00:00+07:00', '13:00 30/09/2026')
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "HANOI",
    "HANOI_UTC_OFFSET_S",
    "hanoi_time",
    "local_iso",
    "now_utc",
    "utc_iso",
]

HANOI_UTC_OFFSET_S: Final = 7 * 3600
"""Hanoi's offset from UTC, in seconds: Asia/Ho_Chi_Minh keeps UTC+7 all year (no DST)."""


def _hanoi_zone() -> tzinfo:
    try:
        return ZoneInfo("Asia/Ho_Chi_Minh")
    except ZoneInfoNotFoundError:  # no tz database on the machine: the offset is fixed
        return timezone(timedelta(seconds=HANOI_UTC_OFFSET_S), "ICT")


HANOI: Final = _hanoi_zone()
"""Asia/Ho_Chi_Minh, the zone every operator-facing time is shown in."""


def now_utc() -> datetime:
    """The current tz-aware UTC time."""
    return datetime.now(UTC)


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix (how times are written on the API and in details).

    Raises:
        ValueError: for a naive datetime (the project never has any).
    """
    if moment.tzinfo is None:
        msg = f"naive datetime {moment!r}: times must be tz-aware"
        raise ValueError(msg)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def local_iso(moment: datetime) -> str:
    """ISO 8601 in Asia/Ho_Chi_Minh (``+07:00``), for people reading the API."""
    return moment.astimezone(HANOI).isoformat()


def hanoi_time(moment: datetime) -> str:
    """An event time as operators read it in alert texts: Hanoi time, to the minute."""
    return moment.astimezone(HANOI).strftime("%H:%M %d/%m/%Y")
