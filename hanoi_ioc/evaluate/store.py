"""Reading a run's results back from the database: alerts and stored series.

Alerts come from ``alerts`` with the event times processing recorded in their details
(``raised_observed_at``, ``first_<severity>_at``, ``cleared_observed_at``); the
wall-clock columns (``raised_at``, ``cleared_at``) say when the backfill ran, not when
anything happened. A transition missing from the details falls back to the ``alert_events``
order: ``observed_at`` of the row is the latest update's measurement time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import numpy as np

from db import Conn
from hanoi_ioc.evaluate.records import AlertTimeline, Series
from processing.alerts import Severity

__all__ = ["alert_from_row", "read_alerts", "read_series"]

_ALERTS = """
SELECT alert_id, rule, category, severity, station_id, quantity, observed_at, details, title_en
FROM alerts ORDER BY alert_id"""
_SERIES = """
SELECT extract(epoch FROM r.time)::float8, r.value
FROM readings r JOIN sensors s USING (sensor_id)
WHERE s.station_id = %s AND s.quantity = %s
ORDER BY r.time"""


def _time(details: Mapping[str, object], key: str) -> datetime | None:
    value = details.get(key)
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def alert_from_row(
    alert_id: int,
    rule: str,
    category: str,
    severity: str,
    station_id: str | None,
    quantity: str | None,
    observed_at: datetime,
    details: Mapping[str, object],
    title_en: str,
) -> AlertTimeline:
    """An :class:`AlertTimeline` from an ``alerts`` row (event times from its details).

    >>> from datetime import UTC
    >>> row = alert_from_row(7, "flood_depth", "event", "severe", "fd-a", "water_depth",
    ...     datetime(2025, 9, 30, 3, tzinfo=UTC), {"raised_observed_at": "2025-09-30T02:00:00Z",
    ...     "first_minor_at": "2025-09-30T02:00:00Z", "first_severe_at": "2025-09-30T02:30:00Z"},
    ...     "Urban flooding")
    >>> row.raised_at.isoformat(), row.reached(Severity.MODERATE).isoformat()
    ('2025-09-30T02:00:00+00:00', '2025-09-30T02:30:00+00:00')
    """
    raised = _time(details, "raised_observed_at") or observed_at
    reached = {s: t for s in Severity if (t := _time(details, f"first_{s.value}_at")) is not None}
    return AlertTimeline(
        alert_id, rule, category, station_id, quantity, Severity(severity), raised,
        _time(details, "cleared_observed_at"), reached or {Severity(severity): raised}, title_en,
    )  # fmt: skip


async def read_alerts(conn: Conn) -> list[AlertTimeline]:
    """Every alert of the database, oldest first."""
    cur = await conn.execute(_ALERTS)
    rows = await cur.fetchall()
    return [
        alert_from_row(int(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4], r[5], r[6],
                       r[7] if isinstance(r[7], dict) else {}, str(r[8]))
        for r in rows
    ]  # fmt: skip


async def read_series(conn: Conn, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Series]:
    """The stored readings of each ``(station, quantity)`` (empty series when none)."""
    out: dict[tuple[str, str], Series] = {}
    for station, quantity in sorted(set(keys)):
        cur = await conn.execute(_SERIES, (station, quantity))
        rows = await cur.fetchall()
        data = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
        out[(station, quantity)] = Series(station, quantity, data[:, 0].copy(), data[:, 1].copy())
    return out
