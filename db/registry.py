"""Registry storage: the ``stations`` and ``sensors`` tables, read whole and written in place."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable

from contract import QUANTITIES, Domain, Quantity, Registry, Sensor, Station, StationId
from db.types import Conn

__all__ = [
    "RegistryReader",
    "load_registry",
    "register_stations",
    "retire_sensors",
    "retire_station",
]

_FINGERPRINT = """
SELECT md5(coalesce((SELECT string_agg(s::text, ',' ORDER BY s.station_id) FROM stations s
                     WHERE s.retired_at IS NULL), '')
           || '|' ||
           coalesce((SELECT string_agg(x::text, ',' ORDER BY x.sensor_id) FROM sensors x
                     WHERE x.retired_at IS NULL), ''))"""


def _station(sensors: dict[str, list[Sensor]]) -> Callable[..., Station]:
    def station(
        station_id: str, domain: str, name: str, district: str, lat: float, lon: float,
        kind: str, attributes: object,
    ) -> Station:  # fmt: skip
        return Station(
            StationId(station_id), Domain(domain), name, district, float(lat), float(lon), kind,
            tuple(sensors.get(station_id, ())),
            dict(attributes) if isinstance(attributes, dict) else {},
        )  # fmt: skip

    return station


async def load_registry(conn: Conn) -> Registry:
    """Read the whole registry (hundreds to a few thousand rows); retired ones are not in it."""
    cur = await conn.execute(
        "SELECT station_id, quantity, sensor_id, interval_s, valid_min, valid_max FROM sensors "
        "WHERE retired_at IS NULL"
    )
    sensors: dict[str, list[Sensor]] = defaultdict(list)
    keys: dict[tuple[str, Quantity], int] = {}
    for station, quantity, key, interval_s, lo, hi in await cur.fetchall():
        try:
            q = Quantity(str(quantity))
        except ValueError:
            continue  # a quantity this version does not know: its readings are refused
        sensors[str(station)].append(
            Sensor(q, float(interval_s), None if lo is None else float(lo),
                   None if hi is None else float(hi))
        )  # fmt: skip
        keys[(str(station), q)] = int(key)
    cur = await conn.execute(
        "SELECT station_id, domain, name, district, lat, lon, kind, attributes FROM stations "
        "WHERE retired_at IS NULL"
    )
    station = _station(sensors)
    stations = [station(*row) for row in await cur.fetchall()]
    return Registry.of(stations, keys)


class RegistryReader:
    """Reads the registry again only when it changed (a service's periodic refresh).

    Building the registry in Python costs about 60 µs a sensor (a quarter of a second at
    4,000 stations, on the service's event loop) and adopting it costs the service more; a
    fingerprint of the rows, computed by the database, costs about 1 µs a sensor there.
    """

    def __init__(self) -> None:
        self.fingerprint: str | None = None

    async def read(self, conn: Conn) -> Registry:
        """The whole registry (its fingerprint remembered)."""
        self.fingerprint = None
        registry = await self.changed(conn)
        assert registry is not None  # noqa: S101 - nothing remembered: always read
        return registry

    async def changed(self, conn: Conn) -> Registry | None:
        """The registry if it changed since the last read, else None."""
        cur = await conn.execute(_FINGERPRINT)
        row = await cur.fetchone()
        fingerprint = None if row is None else str(row[0])
        if self.fingerprint is not None and fingerprint == self.fingerprint:
            return None
        registry = await load_registry(conn)
        self.fingerprint = fingerprint
        return registry


async def register_stations(conn: Conn, stations: Iterable[Station]) -> int:
    """Insert or update stations and their sensors; returns how many stations were written.

    A station or sensor written here is active again if it had been retired.
    """
    count = 0
    async with conn.transaction():
        for st in stations:
            await conn.execute(
                """INSERT INTO stations (station_id, domain, name, district, lat, lon, kind,
                                         attributes)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (station_id) DO UPDATE SET
                     domain = excluded.domain, name = excluded.name,
                     district = excluded.district, lat = excluded.lat, lon = excluded.lon,
                     kind = excluded.kind, attributes = excluded.attributes, updated_at = now(),
                     retired_at = NULL""",
                (
                    st.station_id,
                    st.domain.value,
                    st.name,
                    st.district,
                    st.lat,
                    st.lon,
                    st.kind,
                    json.dumps(st.attributes),
                ),
            )
            for sensor in st.sensors:
                await conn.execute(
                    """INSERT INTO sensors (station_id, quantity, unit, interval_s, valid_min,
                                            valid_max)
                       VALUES (%s, %s, %s, %s, %s, %s)
                       ON CONFLICT (station_id, quantity) DO UPDATE SET
                         unit = excluded.unit, interval_s = excluded.interval_s,
                         valid_min = excluded.valid_min, valid_max = excluded.valid_max,
                         retired_at = NULL""",
                    (
                        st.station_id,
                        sensor.quantity.value,
                        QUANTITIES[sensor.quantity].unit,
                        sensor.interval_s,
                        sensor.valid_min,
                        sensor.valid_max,
                    ),
                )
            count += 1
        await conn.execute("NOTIFY registry_changed")
        # Planner statistics now, not at autovacuum's next pass: every dashboard joins
        # `sensors` to the aggregates, and on a never-analysed `sensors` the planner guesses a
        # handful of rows and re-runs plain PostgreSQL's aggregate view once per sensor
        # (docs/storage.md). A few milliseconds for a city's registry.
        await conn.execute("ANALYZE stations, sensors")
    return count


async def retire_station(conn: Conn, station_id: str) -> bool:
    """Retire a station and its sensors (history stays); False when it is not active."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE stations SET retired_at = now(), updated_at = now() "
            "WHERE station_id = %s AND retired_at IS NULL",
            (station_id,),
        )
        if cur.rowcount == 0:
            return False
        await conn.execute(
            "UPDATE sensors SET retired_at = now() WHERE station_id = %s AND retired_at IS NULL",
            (station_id,),
        )
        await conn.execute("NOTIFY registry_changed")
    return True


async def retire_sensors(conn: Conn, station_id: str, keep: Iterable[Quantity]) -> list[str]:
    """Retire a station's active sensors other than ``keep``; returns their quantities."""
    kept = [q.value for q in keep]
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE sensors SET retired_at = now() WHERE station_id = %s AND retired_at IS NULL "
            "AND NOT (quantity = ANY(%s)) RETURNING quantity",
            (station_id, kept),
        )
        retired = sorted(str(row[0]) for row in await cur.fetchall())
        if retired:
            await conn.execute("NOTIFY registry_changed")
    return retired
