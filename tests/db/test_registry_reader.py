"""The registry is read again only when it changed: any change to a station or a sensor."""

import dataclasses

import psycopg
import pytest

from contract import Quantity, Sensor
from db import RegistryReader, register_stations, retire_sensors
from tests.fixtures.readings import AIR, TEST_STATIONS

pytestmark = [pytest.mark.db, pytest.mark.anyio]


async def test_the_registry_is_read_again_when_and_only_when_it_changed(db_url: str) -> None:
    reader = RegistryReader()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await register_stations(conn, TEST_STATIONS)
        first = await reader.read(conn)
        assert set(first.stations) == {s.station_id for s in TEST_STATIONS}
        assert await reader.changed(conn) is None
        assert await reader.changed(conn) is None

        # a station's attribute
        renamed = dataclasses.replace(AIR, name=AIR.name + " (mới)")
        await register_stations(conn, [renamed])
        after_rename = await reader.changed(conn)
        assert after_rename is not None
        assert after_rename.stations[AIR.station_id].name == renamed.name
        assert await reader.changed(conn) is None

        # a sensor's interval only (the station row as it was)
        slower = tuple(
            Sensor(s.quantity, s.interval_s * 2, s.valid_min, s.valid_max)
            if s.quantity is Quantity.PM25 else s
            for s in renamed.sensors
        )  # fmt: skip
        await register_stations(conn, [dataclasses.replace(renamed, sensors=slower)])
        after_interval = await reader.changed(conn)
        assert after_interval is not None
        pm25 = after_interval.sensor(AIR.station_id, Quantity.PM25)
        assert pm25 is not None
        assert pm25.interval_s == 2 * first.sensors[(AIR.station_id, Quantity.PM25)].interval_s

        # a retired sensor
        others = [s.quantity for s in AIR.sensors if s.quantity is not Quantity.PM25]
        assert await retire_sensors(conn, AIR.station_id, others) == [Quantity.PM25.value]
        after_retire = await reader.changed(conn)
        assert after_retire is not None
        assert (AIR.station_id, Quantity.PM25) not in after_retire.sensors
        assert await reader.changed(conn) is None
