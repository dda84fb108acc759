"""Times on the API: ISO 8601 UTC always, plus an Asia/Ho_Chi_Minh rendering for people.

The zone and the formats have one home, :mod:`contract.clock`; this module adds what the
API's schemas need of them.

>>> from datetime import UTC, datetime
>>> t = datetime(2026, 9, 30, 6, 0, tzinfo=UTC)
>>> maybe_local(t), maybe_local(None)
('2026-09-30T13:00:00+07:00', None)
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer

from contract import local_iso, utc_iso

__all__ = ["UtcDatetime", "maybe_local"]


def maybe_local(moment: datetime | None) -> str | None:
    """:func:`contract.local_iso`, passing ``None`` through."""
    return None if moment is None else local_iso(moment)


UtcDatetime = Annotated[datetime, PlainSerializer(utc_iso, return_type=str, when_used="json")]
"""A datetime that serialises as ISO 8601 UTC (``...Z``)."""
