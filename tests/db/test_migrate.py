"""Migrations and the plain-PostgreSQL strategy on a real server."""

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

import db.strategies
from db import (
    Capabilities,
    PlainStrategy,
    StorageError,
    StrategyName,
    choose_strategy,
    migrations,
    upgrade,
)
from db.migrate import _recorded_or_chosen
from db.strategies import ROLLUP_1M_RETENTION_DAYS

pytestmark = [pytest.mark.db, pytest.mark.anyio]


def test_each_strategy_has_one_migration_per_version() -> None:
    for strategy in ("plain", "timescale"):
        versions = [m.version for m in migrations(strategy)]
        assert versions == sorted(set(versions))
        assert versions[0] == 1


def test_timescale_migration_is_idempotent_and_autocommit() -> None:
    mig = {m.version: m for m in migrations("timescale")}[2]
    assert not mig.transactional
    assert "if_not_exists => true" in mig.sql
    assert "materialized_only = false" in mig.sql


def test_strategy_choice() -> None:
    plain = Capabilities(150000, None, None, None)
    tsdb = Capabilities(170000, "2.29.2", None, "timescale")
    apache = Capabilities(170000, "2.29.2", "2.29.2", "apache")
    assert choose_strategy(plain) == "plain"
    assert choose_strategy(tsdb) == "timescale"
    assert choose_strategy(apache) == "plain"
    assert choose_strategy(tsdb, "plain") == "plain"
    with pytest.raises(StorageError, match="not installed"):
        choose_strategy(plain, "timescale")
    not_preloaded = Capabilities(150000, "2.28.3", None, "timescale", timescaledb_preloaded=False)
    assert choose_strategy(not_preloaded) == "plain"
    with pytest.raises(StorageError, match="not preloaded"):
        choose_strategy(not_preloaded, "timescale")


def test_the_strategy_a_database_was_built_with_wins() -> None:
    tsdb = Capabilities(170000, "2.29.2", "2.29.2", "timescale")
    not_preloaded = Capabilities(150000, "2.28.3", None, "timescale", timescaledb_preloaded=False)
    assert _recorded_or_chosen({"plain"}, tsdb, None) == "plain"
    assert _recorded_or_chosen({"timescale"}, tsdb, None) == "timescale"
    with pytest.raises(StorageError, match="built with the 'plain' storage strategy"):
        _recorded_or_chosen({"plain"}, tsdb, "timescale")
    with pytest.raises(StorageError, match="not preloaded"):
        _recorded_or_chosen({"timescale"}, not_preloaded, None)


async def test_upgrade_is_repeatable(db_url: str, storage_strategy: StrategyName) -> None:
    strategy, applied = await upgrade(db_url)
    assert strategy == storage_strategy  # the strategy the database was built with wins
    assert applied == []  # the template already holds every migration


@pytest.mark.usefixtures("plain_only")
async def test_a_partition_not_made_is_made_next_time(db_url: str) -> None:
    # A backfill reaching a new day while a long reader (a rollup refresh) holds `readings`:
    # the partition waits at most the lock timeout, and a creation that did not commit
    # (timed out, or rolled back with a caller's transaction) is not taken as made.
    strategy = PlainStrategy(lock_timeout_s=0.2)
    day = datetime.now(UTC).date() - timedelta(days=40)
    async with (
        await psycopg.AsyncConnection.connect(db_url) as conn,
        await psycopg.AsyncConnection.connect(db_url) as reader,
    ):
        await reader.execute("LOCK TABLE readings IN ACCESS SHARE MODE")  # held open
        with pytest.raises(psycopg.errors.LockNotAvailable):
            await strategy.ensure_partitions(conn, day, day)
        await conn.rollback()
        await reader.rollback()
        async with conn.transaction(force_rollback=True):  # a caller's transaction, undone
            assert await strategy.ensure_partitions(conn, day, day) == 1
        assert await strategy.ensure_partitions(conn, day, day) == 1  # made for real now
        assert await strategy.ensure_partitions(conn, day, day) == 0  # and remembered
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"readings_p{day:%Y%m%d}",))
        assert await cur.fetchone() == (True,)


@pytest.mark.usefixtures("plain_only")
async def test_writers_reaching_a_new_day_together_both_get_its_partition(db_url: str) -> None:
    day = datetime.now(UTC).date() - timedelta(days=50)
    makers = [PlainStrategy() for _ in range(4)]  # one per ingest instance
    conns = [await psycopg.AsyncConnection.connect(db_url) for _ in makers]
    try:
        made = await asyncio.gather(
            *(s.ensure_partitions(c, day, day) for s, c in zip(makers, conns, strict=True))
        )
    finally:
        for conn in conns:
            await conn.close()
    assert sorted(made) == [0, 0, 0, 1]


@pytest.mark.usefixtures("plain_only")
async def test_partitions_rollups_and_retention(
    aconn: psycopg.AsyncConnection[tuple[object, ...]],
) -> None:
    strategy = PlainStrategy()
    today = datetime.now(UTC).date()
    old = today - timedelta(days=10)
    assert await strategy.ensure_partitions(aconn, old, old) == 1
    assert await strategy.ensure_partitions(aconn, old, old) == 0  # cached
    await strategy.maintain(aconn, retention_days=400)
    now = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    rows = [(now + timedelta(seconds=10 * i), 1, float(i)) for i in range(12)]
    async with aconn.transaction(), aconn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO readings (time, sensor_id, value, received_at) VALUES (%s, %s, %s, now())",
            rows,
        )
        await strategy.invalidate(aconn, rows[0][0], rows[-1][0])
    await strategy.maintain(aconn, retention_days=400)
    cur = await aconn.execute("SELECT count(*), sum(n) FROM readings_1m_rollup")
    assert await cur.fetchone() == (2, 12)
    cur = await aconn.execute("SELECT sum(n) FROM readings_1m")
    assert await cur.fetchone() == (12,)
    # a late row below the watermark is picked up through the invalidation log
    late = now - timedelta(minutes=30)
    async with aconn.transaction():
        await aconn.execute(
            "INSERT INTO readings (time, sensor_id, value, received_at) VALUES (%s, 1, 5, now())",
            (late,),
        )
        await strategy.invalidate(aconn, late, late)
    await strategy.maintain(aconn, retention_days=400)
    cur = await aconn.execute("SELECT sum(n) FROM readings_1m_rollup")
    assert await cur.fetchone() == (13,)
    cur = await aconn.execute("SELECT sum(n) FROM readings_1h")
    assert await cur.fetchone() == (13,)
    # rows newer than the watermark are aggregated live by the view
    fresh = datetime.now(UTC) + timedelta(minutes=5)
    await aconn.execute(
        "INSERT INTO readings (time, sensor_id, value, received_at) VALUES (%s, 2, 7, now())",
        (fresh,),
    )
    cur = await aconn.execute("SELECT n, max FROM readings_1m WHERE sensor_id = 2")
    assert await cur.fetchone() == (1, 7.0)
    # retention detaches and drops whole days
    summary = await strategy.maintain(aconn, retention_days=5)
    assert "partitions dropped=1" in summary
    cur = await aconn.execute("SELECT to_regclass(%s)", (f"readings_p{old:%Y%m%d}",))
    assert await cur.fetchone() == (None,)


@pytest.mark.usefixtures("plain_only")
async def test_minute_buckets_past_their_retention_are_dropped_a_bounded_number_at_a_time(
    aconn: psycopg.AsyncConnection[tuple[object, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The minute rollup is as large as the readings at a 60 s interval: it must not grow
    for ever (TimescaleDB drops its minute aggregate after the same 90 days)."""
    monkeypatch.setattr(db.strategies, "_PRUNE_ROWS", 50)
    strategy = PlainStrategy()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    kept_day = today - timedelta(days=ROLLUP_1M_RETENTION_DAYS - 1)
    old_day = today - timedelta(days=ROLLUP_1M_RETENTION_DAYS + 1)
    async with aconn.transaction(), aconn.cursor() as cur:
        for day, hours in ((old_day, 0), (kept_day, 0), (old_day, 1)):
            await cur.execute(
                "INSERT INTO readings_1m_rollup (bucket, sensor_id, avg, min, max, n) "
                "SELECT %s + make_interval(hours => %s, mins => m), 1, 1, 1, 1, 1 "
                "FROM generate_series(0, 59) m",
                (day, hours),
            )
        await cur.execute(
            "INSERT INTO readings_1h_rollup (bucket, sensor_id, avg, min, max, n) "
            "VALUES (%s, 1, 1, 1, 1, 60)",
            (old_day,),
        )
    first = await strategy.maintain(aconn, retention_days=400)
    assert "minute buckets dropped=50" in first
    second = await strategy.maintain(aconn, retention_days=400)
    assert "minute buckets dropped=50" in second
    third = await strategy.maintain(aconn, retention_days=400)
    assert "minute buckets dropped=20" in third
    cur = await aconn.execute("SELECT min(bucket), count(*) FROM readings_1m_rollup")
    assert await cur.fetchone() == (kept_day, 60)
    cur = await aconn.execute("SELECT count(*) FROM readings_1h_rollup")
    assert await cur.fetchone() == (1,)  # hourly buckets stay


@pytest.mark.db
@pytest.mark.anyio
async def test_a_server_that_closes_the_connection_is_not_hidden_behind_it(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the server ends the session (e.g. refusing an extension it cannot load), the
    migrator reports why, not "the connection is closed" from releasing its lock."""
    import db.migrate

    async def refuse(conn: psycopg.AsyncConnection[object], forced: object) -> object:
        await conn.close()  # as a FATAL from the server leaves it
        msg = 'extension "timescaledb" must be preloaded'
        raise StorageError(msg)

    monkeypatch.setattr(db.migrate, "_upgrade_locked", refuse)
    with pytest.raises(StorageError, match="must be preloaded"):
        await upgrade(db_url)
