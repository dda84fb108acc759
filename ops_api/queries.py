"""SQL reads for stations, readings, indices, quarantine and heartbeats -> dataclasses.

Every function takes an open connection (from the pool) and returns frozen dataclasses made
by psycopg's ``class_row``; routes never see tuples or dicts. Alerts live in
:mod:`ops_api.alert_queries`, history with downsampling in :mod:`ops_api.history`.
Connections run with ``TimeZone=UTC``, so every timestamp comes back tz-aware UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool
from pydantic import JsonValue

from db import Conn
from processing.derived import IndexRow

__all__ = [
    "HeartbeatRow",
    "LatestRow",
    "Pool",
    "QuarantineRow",
    "SensorRow",
    "StationRow",
    "StatusRow",
    "find_sensor",
    "list_heartbeats",
    "list_indices",
    "list_latest",
    "list_quarantine",
    "list_sensors",
    "list_stations",
    "list_status_history",
    "station_indices",
]

Pool = AsyncConnectionPool[Conn]


@dataclass(frozen=True, slots=True)
class StationRow:
    """A registered station with its reported state, liveness and open alerts."""

    station_id: str
    domain: str
    name: str
    district: str
    lat: float
    lon: float
    kind: str
    attributes: dict[str, JsonValue]
    reported_state: str | None
    state_since: datetime | None
    state_reason: str | None
    last_received: datetime | None
    last_measured: datetime | None
    min_interval_s: float | None
    open_alerts: int
    max_open_severity: str | None


@dataclass(frozen=True, slots=True)
class LatestRow:
    """The newest value of one sensor (by measurement time)."""

    sensor_id: int
    station_id: str
    domain: str
    district: str
    quantity: str
    unit: str
    interval_s: float
    time: datetime
    value: float
    quality: int
    received_at: datetime


@dataclass(frozen=True, slots=True)
class SensorRow:
    """One registered sensor."""

    sensor_id: int
    station_id: str
    domain: str
    quantity: str
    unit: str
    interval_s: float
    valid_min: float | None
    valid_max: float | None


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One device status transition."""

    state: str
    at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """One refused message with its raw bytes."""

    quarantine_id: int
    received_at: datetime
    topic: str
    client_id: str | None
    payload: bytes
    reason: str
    detail: str
    station_id: str | None
    quantity: str | None
    readings: int
    replayed_at: datetime | None
    replay_outcome: str | None


@dataclass(frozen=True, slots=True)
class HeartbeatRow:
    """One running service instance and its counters."""

    service: str
    instance: str
    started_at: datetime
    seen_at: datetime
    stats: dict[str, JsonValue]
    age_s: float


_STATIONS: Final = """
SELECT s.station_id, s.domain, s.name, s.district, s.lat, s.lon, s.kind, s.attributes,
       ss.state AS reported_state, ss.since AS state_since, ss.reason AS state_reason,
       lv.last_received, lv.last_measured, lv.min_interval_s,
       coalesce(al.open_alerts, 0)::int AS open_alerts, al.max_open_severity
FROM stations s
LEFT JOIN station_state ss USING (station_id)
LEFT JOIN LATERAL (
    SELECT max(l.received_at) AS last_received, max(l.time) AS last_measured,
           min(se.interval_s) AS min_interval_s
    FROM sensors se LEFT JOIN latest l USING (sensor_id)
    WHERE se.station_id = s.station_id AND se.retired_at IS NULL) lv ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS open_alerts,
           (array_agg(a.severity ORDER BY array_position(
               ARRAY['info','minor','moderate','severe','extreme'], a.severity) DESC))[1]
               AS max_open_severity
    FROM alerts a WHERE a.station_id = s.station_id AND a.state <> 'cleared') al ON true
WHERE s.retired_at IS NULL
  AND (%(domains)s::text[] IS NULL OR s.domain = ANY(%(domains)s))
  AND (%(station)s::text IS NULL OR s.station_id = %(station)s)
ORDER BY s.station_id
"""


async def list_stations(
    conn: Conn, *, domains: Sequence[str] | None = None, station: str | None = None
) -> list[StationRow]:
    """Stations (optionally of some domains, or one station) with state and open alerts."""
    async with conn.cursor(row_factory=class_row(StationRow)) as cur:
        await cur.execute(_STATIONS, {"domains": _opt_list(domains), "station": station})
        return await cur.fetchall()


_LATEST: Final = """
SELECT l.sensor_id, l.station_id, l.domain, l.district, l.quantity, l.unit, s.interval_s,
       l.time, l.value, l.quality, l.received_at
FROM latest_readings l
JOIN sensors s USING (sensor_id)
WHERE (%(domains)s::text[] IS NULL OR l.domain = ANY(%(domains)s))
  AND (%(stations)s::text[] IS NULL OR l.station_id = ANY(%(stations)s))
  AND (%(quantities)s::text[] IS NULL OR l.quantity = ANY(%(quantities)s))
  AND (%(after)s::timestamptz IS NULL OR l.received_at > %(after)s)
ORDER BY l.station_id, l.quantity
"""


async def list_latest(
    conn: Conn,
    *,
    domains: Sequence[str] | None = None,
    stations: Sequence[str] | None = None,
    quantities: Sequence[str] | None = None,
    received_after: datetime | None = None,
) -> list[LatestRow]:
    """The newest value of every matching sensor (``received_after``: changed since)."""
    params = {
        "domains": _opt_list(domains),
        "stations": _opt_list(stations),
        "quantities": _opt_list(quantities),
        "after": received_after,
    }
    async with conn.cursor(row_factory=class_row(LatestRow)) as cur:
        await cur.execute(_LATEST, params)
        return await cur.fetchall()


_SENSORS: Final = """
SELECT se.sensor_id, se.station_id, st.domain, se.quantity, se.unit, se.interval_s,
       se.valid_min, se.valid_max
FROM sensors se JOIN stations st USING (station_id)
WHERE (NOT %(active)s OR (se.retired_at IS NULL AND st.retired_at IS NULL))
  AND (%(station)s::text IS NULL OR se.station_id = %(station)s)
  AND (%(quantity)s::text IS NULL OR se.quantity = %(quantity)s)
ORDER BY se.station_id, se.quantity
"""


async def list_sensors(conn: Conn, station: str) -> list[SensorRow]:
    """The active sensors of one station."""
    async with conn.cursor(row_factory=class_row(SensorRow)) as cur:
        await cur.execute(_SENSORS, {"station": station, "quantity": None, "active": True})
        return await cur.fetchall()


async def find_sensor(conn: Conn, station: str, quantity: str) -> SensorRow | None:
    """One sensor by station and quantity (retired ones too: their history stays), or ``None``."""
    async with conn.cursor(row_factory=class_row(SensorRow)) as cur:
        await cur.execute(_SENSORS, {"station": station, "quantity": quantity, "active": False})
        return await cur.fetchone()


async def list_status_history(conn: Conn, station: str, limit: int) -> list[StatusRow]:
    """The newest status transitions of one station, newest first."""
    async with conn.cursor(row_factory=class_row(StatusRow)) as cur:
        await cur.execute(
            "SELECT state, at, reason FROM sensor_status WHERE station_id = %s "
            "ORDER BY received_at DESC, seq DESC LIMIT %s",  # arrival order (migration 0008)
            (station, limit),
        )
        return await cur.fetchall()


_STATION_INDICES: Final = """
SELECT DISTINCT ON (station_id, index) time, station_id, index, value, level, dominant, details
FROM indices
WHERE station_id = ANY(%(stations)s) AND time > now() - %(window)s
ORDER BY station_id, index, time DESC
"""


async def station_indices(conn: Conn, stations: Sequence[str], window: timedelta) -> list[IndexRow]:
    """The newest value of each index of each station, within ``window`` of now."""
    async with conn.cursor(row_factory=class_row(IndexRow)) as cur:
        await cur.execute(_STATION_INDICES, {"stations": list(stations), "window": window})
        return await cur.fetchall()


_INDICES: Final = """
SELECT i.time, i.station_id, i.index, i.value, i.level, i.dominant, i.details
FROM indices i JOIN stations s USING (station_id)
WHERE (%(stations)s::text[] IS NULL OR i.station_id = ANY(%(stations)s))
  AND (%(domains)s::text[] IS NULL OR s.domain = ANY(%(domains)s))
  AND (%(index)s::text IS NULL OR i.index = %(index)s)
  AND i.time >= %(start)s AND i.time < %(end)s
ORDER BY i.time DESC, i.station_id, i.index
LIMIT %(limit)s
"""


async def list_indices(
    conn: Conn,
    *,
    stations: Sequence[str] | None,
    domains: Sequence[str] | None,
    index: str | None,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[IndexRow]:
    """Index values in ``[start, end)``, newest first."""
    params = {
        "stations": _opt_list(stations),
        "domains": _opt_list(domains),
        "index": index,
        "start": start,
        "end": end,
        "limit": limit,
    }
    async with conn.cursor(row_factory=class_row(IndexRow)) as cur:
        await cur.execute(_INDICES, params)
        return await cur.fetchall()


# --- quarantine and service heartbeats ------------------------------------------------------

_QUARANTINE: Final = """
SELECT quarantine_id, received_at, topic, client_id, payload, reason, detail, station_id,
       quantity, readings, replayed_at, replay_outcome
FROM quarantine
WHERE (%(reason)s::text IS NULL OR reason = %(reason)s)
  AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)
ORDER BY quarantine_id DESC
LIMIT %(limit)s
"""


async def list_quarantine(
    conn: Conn, *, reason: str | None, since: datetime | None, limit: int
) -> list[QuarantineRow]:
    """Refused messages, newest first."""
    async with conn.cursor(row_factory=class_row(QuarantineRow)) as cur:
        await cur.execute(_QUARANTINE, {"reason": reason, "since": since, "limit": limit})
        return await cur.fetchall()


async def list_heartbeats(conn: Conn) -> list[HeartbeatRow]:
    """Every service instance's last heartbeat, with its age by the database clock."""
    async with conn.cursor(row_factory=class_row(HeartbeatRow)) as cur:
        await cur.execute(
            "SELECT service, instance, started_at, seen_at, stats, "
            "extract(epoch FROM now() - seen_at)::float8 AS age_s "
            "FROM service_heartbeats ORDER BY service, instance"
        )
        return await cur.fetchall()


def _opt_list(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else [str(v) for v in values]
