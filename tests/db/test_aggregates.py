"""Aggregates stay right for data of any age within retention, on both strategies.

A backfill of twelve hours ten days back (and one older still) is written the way ingest
writes it; after one upkeep round ``readings_1m``, ``readings_1h`` and the history API's
downsampled series account for every reading — on plain PostgreSQL through the rollup
invalidation log, on TimescaleDB through the refresh queue (the policies reach back 3 hours
and 3 days only).
"""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from contract import Quantity
from db import Conn, StrategyName, load_registry, register_stations, strategy_for
from db.timescale import job_health, run_overdue_jobs
from ingest.writer import Writer, configure_connection
from ops_api.history import fetch_history
from ops_api.queries import find_sensor
from stream.batcher import Batch
from stream.consumer import RawMessage
from stream.validate import Outcome, Row
from tests.fixtures.readings import AIR, TEST_STATIONS

pytestmark = [pytest.mark.db, pytest.mark.anyio]


def batch_of(rows: list[Row]) -> Batch:
    now = datetime.now(UTC)
    outcome = Outcome(RawMessage("t", b"", 1, 1, now, 1), rows=tuple(rows))
    return Batch([outcome], len(rows))


async def counts(conn: Conn, view: str, lo: datetime, hi: datetime) -> int:
    cur = await conn.execute(
        f"SELECT coalesce(sum(n), 0) FROM {view} WHERE bucket >= %s AND bucket < %s",
        (lo, hi),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_a_backfill_of_any_age_reaches_the_aggregates_and_the_history(
    db_url: str, storage_strategy: StrategyName
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)
        key = (await load_registry(conn)).keys[(AIR.station_id, Quantity.PM25)]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    live = [(now - timedelta(minutes=m), key, 20.0, 0, now) for m in range(1, 31)]
    ten_days = now - timedelta(days=10)
    backfill = [(ten_days + timedelta(minutes=m), key, 30.0 + m % 5, 0, now) for m in range(720)]
    older = now - timedelta(days=40)
    oldest = [(older + timedelta(minutes=m), key, 5.0, 0, now) for m in range(60)]
    strategy = strategy_for(storage_strategy)
    pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
        db_url, min_size=1, max_size=2, configure=configure_connection, open=False
    )
    async with pool:
        writer = Writer(pool, strategy)
        assert (await writer.write(batch_of(live))).stored == len(live)
        async with pool.connection() as conn:  # the aggregates' own refreshes, as live
            await strategy.maintain(conn, retention_days=400)
            if storage_strategy == "timescale":
                await run_overdue_jobs(conn, await job_health(conn), every=True)
        for rows in (backfill, oldest):
            assert (await writer.write(batch_of(rows))).stored == len(rows)
        async with pool.connection() as conn:
            await strategy.maintain(conn, retention_days=400)
            await conn.commit()
            for rows in (backfill, oldest):
                lo, hi = rows[0][0], rows[-1][0] + timedelta(minutes=1)
                assert await counts(conn, "readings_1m", lo, hi) == len(rows)
                assert await counts(conn, "readings_1h", lo - timedelta(hours=1), hi) == len(rows)
            sensor = await find_sensor(conn, AIR.station_id, "pm25")
            assert sensor is not None
            span = (ten_days, ten_days + timedelta(hours=12))
            plan, points = await fetch_history(conn, sensor, *span, max_points=24)
            assert plan.source == "1m"  # a 12-hour window at 24 points reads the rollup
            assert sum(p.n for p in points) == len(backfill)
            assert 30.0 <= min(p.min for p in points) <= max(p.max for p in points) <= 34.0
