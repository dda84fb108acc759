"""Stations and sensors provisioned by admins: added, changed, moved, retired — and audited.

A station put through the API is validated exactly as a registry file is
(:func:`contract.decode_registry`) and written with :func:`db.register_stations`, so ingest
and processing pick it up through ``NOTIFY registry_changed`` as after ``hanoi-ioc registry
load``. Sensors left out of the new document are retired; a retired station or sensor keeps
its readings and alerts but leaves the registry (its messages are refused from then on).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pydantic import JsonValue

from contract import Station, decode_registry, encode_registry
from db import Conn, register_stations, retire_sensors, retire_station
from ops_api.audit import record_change

__all__ = [
    "PutResult",
    "StationDoc",
    "decode_station",
    "list_station_docs",
    "put_station",
    "retire",
]


def decode_station(station_id: str, body: dict[str, JsonValue]) -> Station:
    """The station of an API body, through the registry file's decoder.

    Raises:
        contract.PayloadError: when the registry decoder refuses it.
    """
    document = json.dumps([{"station_id": station_id, **body}]).encode()
    (station,) = decode_registry(document)
    return station


@dataclass(frozen=True, slots=True)
class PutResult:
    """What :func:`put_station` did."""

    created: bool
    action: str
    retired_sensors: list[str]


_CURRENT: Final = (
    "SELECT domain, lat, lon, district, retired_at FROM stations WHERE station_id = %s FOR UPDATE"
)


async def put_station(conn: Conn, station: Station, *, actor: str) -> PutResult:
    """Create or replace a station (its sensors exactly as given), in one transaction."""
    async with conn.transaction():
        cur = await conn.execute(_CURRENT, (station.station_id,))
        before = await cur.fetchone()
        await register_stations(conn, [station])
        retired = await retire_sensors(
            conn, station.station_id, (s.quantity for s in station.sensors)
        )
        details: dict[str, JsonValue] = json.loads(encode_registry([station]))[0]
        if before is None:
            action = "station.create"
        else:
            _domain, lat, lon, district, retired_at = before
            details["previous"] = {"lat": lat, "lon": lon, "district": district}
            moved = (lat, lon, district) != (station.lat, station.lon, station.district)
            action = "station.move" if moved else "station.update"
            if retired_at is not None:
                action = "station.reactivate"
        details["retired_sensors"] = list(retired)
        await record_change(
            conn, actor=actor, action=action, kind="station", target=station.station_id,
            details=details,
        )  # fmt: skip
    return PutResult(before is None, action, retired)


async def retire(conn: Conn, station_id: str, *, actor: str) -> bool:
    """Retire an active station and its sensors; False when there is none."""
    async with conn.transaction():
        if not await retire_station(conn, station_id):
            return False
        await record_change(
            conn, actor=actor, action="station.retire", kind="station", target=station_id
        )
    return True


@dataclass(frozen=True, slots=True)
class StationDoc:
    """A registered station with its active sensors and retirement time."""

    station: Station
    retired_at: datetime | None


async def list_station_docs(conn: Conn, station_id: str | None = None) -> list[StationDoc]:
    """Every station (or one), retired ones included, with their active sensors."""
    cur = await conn.execute(
        "SELECT station_id, quantity, interval_s, valid_min, valid_max FROM sensors "
        "WHERE retired_at IS NULL AND (%s::text IS NULL OR station_id = %s) ORDER BY quantity",
        (station_id, station_id),
    )
    sensors: dict[str, list[dict[str, object]]] = defaultdict(list)
    for sid, quantity, interval_s, lo, hi in await cur.fetchall():
        sensors[str(sid)].append(
            {"quantity": quantity, "interval_s": interval_s, "valid_min": lo, "valid_max": hi}
        )
    cur = await conn.execute(
        "SELECT station_id, domain, name, district, lat, lon, kind, attributes, retired_at "
        "FROM stations WHERE (%s::text IS NULL OR station_id = %s) ORDER BY station_id",
        (station_id, station_id),
    )
    docs = []
    for sid, domain, name, district, lat, lon, kind, attributes, retired_at in await cur.fetchall():
        entry = {
            "station_id": sid, "domain": domain, "name": name, "district": district,
            "lat": lat, "lon": lon, "kind": kind, "sensors": sensors.get(str(sid), []),
            "attributes": attributes if isinstance(attributes, dict) else {},
        }  # fmt: skip
        try:
            (station,) = decode_registry(json.dumps([entry]).encode())
        except ValueError:
            continue  # a row this version cannot read (an unknown quantity): not provisionable
        docs.append(StationDoc(station, retired_at))
    return docs
