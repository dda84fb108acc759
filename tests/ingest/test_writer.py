"""The writer on a real PostgreSQL: direct COPY, the staging fallback on redelivery, latest."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from contract import Quantity
from db import Conn, StrategyName, load_registry, register_stations, strategy_for
from ingest.writer import Writer, configure_connection, newest_per_sensor
from stream.batcher import Batch
from stream.consumer import RawMessage
from stream.validate import Outcome, Row
from tests.fixtures.readings import AIR, TEST_STATIONS

pytestmark = [pytest.mark.db, pytest.mark.anyio]

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def batch_of(*messages: list[Row]) -> Batch:
    message = RawMessage("t", b"", 0, 1, T0, 0)
    outcomes = [Outcome(message, tuple(rows)) for rows in messages]
    return Batch(outcomes, sum(len(rows) for rows in messages))


async def query(conn: Conn, sql: str) -> list[tuple[object, ...]]:
    cur = await conn.execute(sql)
    return list(await cur.fetchall())


@pytest.fixture
async def setup(db_url: str) -> tuple[str, int, int]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)
        registry = await load_registry(conn)
    pm25 = registry.keys[(AIR.station_id, Quantity.PM25)]
    no2 = registry.keys[(AIR.station_id, Quantity.NO2)]
    return db_url, pm25, no2


async def test_direct_copy_then_staging_on_redelivery(
    setup: tuple[str, int, int], storage_strategy: StrategyName
) -> None:
    url, pm25, no2 = setup
    first = [(T0 + timedelta(minutes=i), pm25, 10.0 + i, 0, T0) for i in range(5)]
    more = [(T0 + timedelta(minutes=i), no2, 40.0 + i, 0, T0) for i in range(3)]
    pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
        url, min_size=1, max_size=1, configure=configure_connection, open=False
    )
    async with pool:
        writer = Writer(pool, strategy_for(storage_strategy))
        result = await writer.write(batch_of(first, more))
        assert (result.stored, result.duplicates, writer.conflicts) == (8, 0, 0)

        # A redelivery of the first message with a new one: only the new rows are stored,
        # the old ones counted as duplicates, nothing twice, and the savepoint left the
        # transaction usable.
        later = [(T0 + timedelta(minutes=10), pm25, 99.0, 0, T0)]
        result = await writer.write(batch_of(first, later))
        assert (result.stored, result.duplicates, writer.conflicts) == (1, 5, 1)

        # Within the staging period, a clean batch goes through staging and stores all.
        clean = [(T0 + timedelta(minutes=20), no2, 50.0, 0, T0)]
        result = await writer.write(batch_of(clean))
        assert (result.stored, result.duplicates, writer.conflicts) == (1, 0, 1)

        # A batch that repeats a key inside itself (a device re-sending a message).
        writer._staged_until = 0.0  # the direct path again, as after the staging period
        twice = [(T0 + timedelta(minutes=30), pm25, 7.0, 0, T0)]
        result = await writer.write(batch_of(twice, twice))
        assert (result.stored, result.duplicates, writer.conflicts) == (1, 1, 2)

        async with pool.connection() as conn:
            counts = await query(
                conn, "SELECT sensor_id, count(*), count(DISTINCT time) FROM readings "
                "GROUP BY sensor_id ORDER BY sensor_id",
            )  # fmt: skip
            assert sorted(counts) == sorted([(pm25, 7, 7), (no2, 4, 4)])
            latest = await query(conn, "SELECT sensor_id, time, value FROM latest")
            assert sorted(latest) == sorted(
                [(pm25, T0 + timedelta(minutes=30), 7.0), (no2, T0 + timedelta(minutes=20), 50.0)]
            )

        # An older batch never moves `latest` back in time.
        writer._staged_until = 0.0
        old = [(T0 - timedelta(hours=1), pm25, 1.0, 0, T0)]
        assert (await writer.write(batch_of(old))).stored == 1
        async with pool.connection() as conn:
            rows = await query(conn, f"SELECT value FROM latest WHERE sensor_id = {pm25}")
            assert rows == [(7.0,)]


def test_newest_per_sensor_keeps_each_sensors_latest_row() -> None:
    rows: list[Row] = [
        (T0 + timedelta(minutes=2), 1, 2.0, 0, T0),
        (T0, 2, 5.0, 0, T0),
        (T0 + timedelta(minutes=1), 1, 1.0, 0, T0),
        (T0 + timedelta(minutes=3), 2, 6.0, 0, T0),
    ]
    assert sorted(newest_per_sensor(rows)) == [
        (T0 + timedelta(minutes=2), 1, 2.0, 0, T0),
        (T0 + timedelta(minutes=3), 2, 6.0, 0, T0),
    ]
