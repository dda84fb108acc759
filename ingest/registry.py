"""The station/sensor registry: load a snapshot for validation, register stations."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from ingest.storage import Conn
from ingest.wire import QUANTITIES, Domain, Quantity, StationId, StationInfo

__all__ = ["RegistrySnapshot", "SensorRef", "StationRef", "load_registry", "register_stations"]


@dataclass(frozen=True, slots=True)
class SensorRef:
    """What validation needs to know about one registered sensor."""

    sensor_id: int
    interval_s: float
    valid_min: float | None
    valid_max: float | None

    def is_plausible(self, value: float) -> bool:
        """False when the value is outside the sensor's plausible range."""
        if self.valid_min is not None and value < self.valid_min:
            return False
        return self.valid_max is None or value <= self.valid_max


@dataclass(frozen=True, slots=True)
class StationRef:
    """What processing and validation need to know about one station."""

    station_id: StationId
    domain: Domain
    name: str
    district: str
    lat: float
    lon: float
    kind: str
    attributes: dict[str, str | float | int | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """An immutable view of the registry, swapped whole on refresh."""

    stations: dict[str, StationRef]
    sensors: dict[tuple[str, Quantity], SensorRef]

    def sensor(self, station_id: str, quantity: Quantity) -> SensorRef | None:
        """The registered sensor, or None."""
        return self.sensors.get((station_id, quantity))


async def load_registry(conn: Conn) -> RegistrySnapshot:
    """Read the whole registry (hundreds to a few thousand rows)."""
    cur = await conn.execute(
        "SELECT station_id, domain, name, district, lat, lon, kind, attributes FROM stations"
    )
    stations = {
        str(r[0]): StationRef(
            StationId(str(r[0])),
            Domain(str(r[1])),
            str(r[2]),
            str(r[3]),
            float(r[4]),
            float(r[5]),
            str(r[6]),
            dict(r[7]) if isinstance(r[7], dict) else {},
        )
        for r in await cur.fetchall()
    }
    cur = await conn.execute(
        "SELECT station_id, quantity, sensor_id, interval_s, valid_min, valid_max FROM sensors"
    )
    sensors: dict[tuple[str, Quantity], SensorRef] = {}
    for station, quantity, sid, interval_s, lo, hi in await cur.fetchall():
        try:
            key = (str(station), Quantity(str(quantity)))
        except ValueError:
            continue  # a quantity this version does not know: its readings are refused
        sensors[key] = SensorRef(
            int(sid),
            float(interval_s),
            None if lo is None else float(lo),
            None if hi is None else float(hi),
        )
    return RegistrySnapshot(stations, sensors)


async def register_stations(conn: Conn, stations: Iterable[StationInfo]) -> int:
    """Insert or update stations and their sensors; returns how many stations were written."""
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
                     kind = excluded.kind, attributes = excluded.attributes, updated_at = now()""",
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
                         valid_min = excluded.valid_min, valid_max = excluded.valid_max""",
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
    return count
