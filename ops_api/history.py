"""History with server-side downsampling: raw readings, or buckets from raw or the rollups.

The plan is pure (:func:`plan_history`); :func:`fetch_history` runs it. Buckets are bounded
so that at most ``max_points`` come back whatever the range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from psycopg.rows import class_row

from db import Conn
from ops_api.queries import SensorRow

__all__ = ["HistoryPlan", "HistoryPointRow", "fetch_history", "plan_history"]

HistorySource = Literal["raw", "1m", "1h"]
_MINUTE_S: Final = 60
_HOUR_S: Final = 3600


@dataclass(frozen=True, slots=True)
class HistoryPointRow:
    """One point of a (possibly downsampled) series; raw points have ``n == 1``."""

    t: datetime
    avg: float
    min: float
    max: float
    n: int


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    """Where a history query reads from and how wide its buckets are.

    Args:
        source: ``raw`` readings, or the ``1m``/``1h`` rollups.
        bucket_s: bucket width; ``None`` returns raw readings one by one.
    """

    source: HistorySource
    bucket_s: int | None


def plan_history(span_s: float, max_points: int, interval_s: float) -> HistoryPlan:
    """Choose the source and bucket width so at most ``max_points`` points come back.

    Buckets are aligned to the start of the range, so ``[start, start + span_s)`` holds at
    most ``ceil(span_s / bucket_s) <= max_points`` of them.

    >>> plan_history(3600, 500, 10)          # 360 readings: raw
    HistoryPlan(source='raw', bucket_s=None)
    >>> plan_history(6 * 3600, 500, 10)      # 2160 readings: 44 s buckets from raw
    HistoryPlan(source='raw', bucket_s=44)
    >>> plan_history(7 * 86400, 500, 10)     # 20 min buckets from the 1 min rollup
    HistoryPlan(source='1m', bucket_s=1260)
    >>> plan_history(365 * 86400, 500, 10)   # 18 h buckets from the 1 h rollup
    HistoryPlan(source='1h', bucket_s=64800)
    """
    if span_s / interval_s <= max_points:
        return HistoryPlan("raw", None)
    width_s = span_s / max_points
    if width_s < _MINUTE_S:
        return HistoryPlan("raw", max(1, math.ceil(width_s)))
    if width_s < _HOUR_S:
        return HistoryPlan("1m", math.ceil(width_s / _MINUTE_S) * _MINUTE_S)
    return HistoryPlan("1h", math.ceil(width_s / _HOUR_S) * _HOUR_S)


_RAW: Final = """
SELECT time AS t, value AS avg, value AS min, value AS max, 1 AS n
FROM readings WHERE sensor_id = %(sensor)s AND time >= %(start)s AND time < %(end)s
ORDER BY time LIMIT %(limit)s
"""
_RAW_BUCKETED: Final = """
SELECT date_bin(%(width)s, time, %(start)s) AS t, avg(value) AS avg, min(value) AS min,
       max(value) AS max, count(*)::int AS n
FROM readings WHERE sensor_id = %(sensor)s AND time >= %(start)s AND time < %(end)s
GROUP BY 1 ORDER BY 1
"""
# Re-bucketing a rollup: the mean of means is weighted by each bucket's count.
_ROLLUP_1M: Final = """
SELECT date_bin(%(width)s, bucket, %(start)s) AS t, sum(avg * n) / sum(n) AS avg,
       min(min) AS min, max(max) AS max, sum(n)::int AS n
FROM readings_1m WHERE sensor_id = %(sensor)s AND bucket >= %(start)s AND bucket < %(end)s
GROUP BY 1 ORDER BY 1
"""
_ROLLUP_1H: Final = _ROLLUP_1M.replace("readings_1m", "readings_1h")
_ROLLUPS: Final = {"1m": _ROLLUP_1M, "1h": _ROLLUP_1H}


async def fetch_history(
    conn: Conn, sensor: SensorRow, start: datetime, end: datetime, max_points: int
) -> tuple[HistoryPlan, list[HistoryPointRow]]:
    """A sensor's series in ``[start, end)``, downsampled to at most ``max_points`` points.

    Raw buckets start exactly at ``start``; rollup buckets start at the whole minute/hour
    holding ``start`` (the rollups know nothing finer).
    """
    span_s = (end - start).total_seconds()
    plan = plan_history(span_s, max_points, sensor.interval_s)
    params: dict[str, object] = {"sensor": sensor.sensor_id, "start": start, "end": end}
    async with conn.cursor(row_factory=class_row(HistoryPointRow)) as cur:
        width_s = plan.bucket_s
        if width_s is None:
            await cur.execute(_RAW, {**params, "limit": max_points + 1})
            rows = await cur.fetchall()
            if len(rows) <= max_points:
                return plan, rows
            # The sensor reported faster than its nominal interval: bucket after all.
            width_s = max(1, math.ceil(span_s / max_points))
            plan = HistoryPlan("raw", width_s)
        if plan.source == "raw":
            await cur.execute(_RAW_BUCKETED, {**params, "width": timedelta(seconds=width_s)})
            return plan, await cur.fetchall()
        # Rollup rows are whole minutes/hours: start at the one holding ``start`` so its
        # readings are not cut off, and widen the buckets so the count bound still holds.
        grain_s = _MINUTE_S if plan.source == "1m" else _HOUR_S
        aligned = datetime.fromtimestamp(start.timestamp() // grain_s * grain_s, UTC)
        per_point = (end - aligned).total_seconds() / max_points
        bucket_s = max(width_s, math.ceil(per_point / grain_s) * grain_s)
        plan = HistoryPlan(plan.source, bucket_s)
        width = timedelta(seconds=bucket_s)
        await cur.execute(_ROLLUPS[plan.source], {**params, "start": aligned, "width": width})
        return plan, await cur.fetchall()
