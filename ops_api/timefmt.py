"""Times on the API: ISO 8601 UTC always, plus an Asia/Ho_Chi_Minh rendering for people.

>>> from datetime import UTC, datetime
>>> t = datetime(2026, 9, 30, 6, 0, tzinfo=UTC)
>>> utc_iso(t), local_iso(t)
('2026-09-30T06:00:00Z', '2026-09-30T13:00:00+07:00')
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Annotated, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import PlainSerializer

__all__ = ["HANOI_TZ", "UtcDatetime", "local_iso", "maybe_local", "now_utc", "utc_iso"]


def _hanoi_tz() -> tzinfo:
    try:
        return ZoneInfo("Asia/Ho_Chi_Minh")
    except ZoneInfoNotFoundError:
        # No tz database on the machine: Vietnam has kept UTC+7 without DST since 1975.
        return timezone(timedelta(hours=7), "ICT")


HANOI_TZ: Final = _hanoi_tz()


def now_utc() -> datetime:
    """The current tz-aware UTC time."""
    return datetime.now(UTC)


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix.

    Raises:
        ValueError: for a naive datetime (the project never has any).
    """
    if moment.tzinfo is None:
        msg = f"naive datetime {moment!r}: times must be tz-aware"
        raise ValueError(msg)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def local_iso(moment: datetime) -> str:
    """ISO 8601 in Asia/Ho_Chi_Minh (``+07:00``), for people reading the API."""
    return moment.astimezone(HANOI_TZ).isoformat()


def maybe_local(moment: datetime | None) -> str | None:
    """:func:`local_iso`, passing ``None`` through."""
    return None if moment is None else local_iso(moment)


UtcDatetime = Annotated[datetime, PlainSerializer(utc_iso, return_type=str, when_used="json")]
"""A datetime that serialises as ISO 8601 UTC (``...Z``)."""
