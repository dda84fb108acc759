"""Processing on a real database: stored readings become committed, announced alerts, once.

Readings are stored the way ingest stores them (so they reach the reading feed); processing
reads the feed from its durable position. Faults: the database cut by the TCP proxy, a stop
with the database away, a restart in the middle, a feed pruned while processing was down.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from contract import Quantity
from db import StrategyName, register_stations
from processing.service import ProcessingService
from processing.settings import ProcessingSettings
from tests.fixtures.feed import Sample, store
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.readings import AIR, FLOOD, TEST_STATIONS

pytestmark = [pytest.mark.db, pytest.mark.anyio]

DEPTH = Quantity.WATER_DEPTH


def settings(url: str, name: str, **extra: float) -> ProcessingSettings:
    return ProcessingSettings.model_validate(
        {"database_url": url, "instance": name, "feed_poll_s": 0.05, **extra}
    )


async def registered(db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)


async def caught_up(service: ProcessingService, seq: int, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while service.position < seq:
            await asyncio.sleep(0.02)


async def rows(db_url: str, sql: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(sql)
        return list(await cur.fetchall())


async def feed_head(db_url: str) -> int:
    (head,) = (await rows(db_url, "SELECT seq FROM feed_head"))[0]
    assert isinstance(head, int)
    return head


def depths(t0: datetime, cms: list[float]) -> list[Sample]:
    return [(FLOOD.station_id, DEPTH, cm, t0 + timedelta(minutes=i)) for i, cm in enumerate(cms)]


async def test_flood_alert_is_committed_then_announced(
    db_url: str, storage_strategy: StrategyName
) -> None:
    await registered(db_url)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as listener:
        await listener.execute("LISTEN alert_events")
        async with ProcessingService(settings(db_url, "flood", clear_after_samples=2)) as svc:
            runner = asyncio.create_task(svc.run())
            for sample in depths(t0, [1, 4, 12, 21, 34, 26, 5, 2, 1]):  # one feed batch each
                await store(db_url, [sample], storage_strategy)
            await caught_up(svc, await feed_head(db_url))
            svc.stop()
            await runner
        heard = [int(n.payload) async for n in listener.notifies(timeout=0.5)]
    events = await rows(
        db_url,
        "SELECT e.event_id, e.action, a.state, a.severity, a.rule, a.details FROM alert_events "
        "e JOIN alerts a USING (alert_id) ORDER BY e.event_id",
    )
    flood = [r for r in events if r[4] == "flood_depth"]
    assert [r[1] for r in flood] == ["raised", "updated", "cleared"]
    assert heard == [r[0] for r in events]  # announced in order, ids of committed rows
    assert flood[-1][2:4] == ("cleared", "severe")
    details = flood[-1][5]
    assert isinstance(details, dict)
    assert details["raised_observed_at"] == (t0 + timedelta(minutes=3)).isoformat()[:19] + "Z"
    assert details["cleared_observed_at"] == (t0 + timedelta(minutes=7)).isoformat()[:19] + "Z"
    assert svc.stats()["readings"] == 9  # decided = stored


async def test_a_silent_sensor_raises_and_clears_through_the_lifecycle(
    db_url: str, storage_strategy: StrategyName
) -> None:
    await registered(db_url)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=445)
    async with ProcessingService(settings(db_url, "silence")) as service:
        runner = asyncio.create_task(service.run())
        batch: list[Sample] = []
        for minute in range(440):  # 400 minutes of history: gaps the silence lane has learnt
            at = t0 + timedelta(minutes=minute)
            batch.append((AIR.station_id, Quantity.PM25, 30.0 + minute % 3, at))
            if not 400 <= minute < 420:  # the flood sensor says nothing for twenty minutes
                batch.append((FLOOD.station_id, DEPTH, 0.5, at))
            if minute >= 400 or minute % 100 == 99:
                await store(db_url, batch, storage_strategy)
                batch = []
        await caught_up(service, await feed_head(db_url))
        service.stop()
        await runner
    found = await rows(
        db_url,
        "SELECT a.dedup_key, a.category, a.quantity, a.state, a.details, "
        "array_agg(e.action ORDER BY e.event_id) FROM alerts a JOIN alert_events e "
        "USING (alert_id) WHERE a.rule = 'sensor_silent' GROUP BY a.alert_id",
    )
    ((key, category, quantity, state, details, actions),) = found
    assert key == f"sensor_silent:{FLOOD.station_id}"
    assert (category, quantity, state, actions) == ("sensor_health", None, "cleared",
                                                    ["raised", "cleared"])  # fmt: skip
    assert isinstance(details, dict)
    raised = datetime.fromisoformat(str(details["raised_observed_at"]).replace("Z", "+00:00"))
    # last heard at minute 399: after 400 one-minute gaps, about eight minutes is rare
    assert t0 + timedelta(minutes=405) <= raised <= t0 + timedelta(minutes=413)


async def test_stored_while_processing_was_away_is_decided_once_after_restarts(
    db_url: str, storage_strategy: StrategyName
) -> None:
    # A backlog stored while processing was down, a stop in the middle of it, a restart:
    # every stored reading is decided exactly once and no alert is raised twice.
    await registered(db_url)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    cms = [1.0] * 20 + [25.0, 35.0, 36.0, 37.0] + [1.0] * 20 + [40.0, 41.0, 42.0] + [1.0] * 10
    for sample in depths(t0, cms):
        await store(db_url, [sample], storage_strategy)
    head = await feed_head(db_url)
    first = ProcessingService(
        settings(db_url, "restart", snapshot_interval_s=0.2, batch_max_readings=1)
    )
    async with first:
        runner = asyncio.create_task(first.run())
        await caught_up(first, head - 30)
        first.stop()
        await runner
    decided = int(first.stats()["readings"])
    assert 0 < decided < len(cms)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        # a crash long after the last snapshot: the restart replays everything it had decided
        # (rebuilding state, committing nothing again) in the same steps as what is new
        await conn.execute("UPDATE processing_state SET position = 0")
    second = ProcessingService(settings(db_url, "restart"))
    async with second:
        runner = asyncio.create_task(second.run())
        await caught_up(second, head)
        second.stop()
        await runner
    assert decided + int(second.stats()["readings"]) == len(cms)  # decided = stored, once
    actions = await rows(
        db_url,
        "SELECT a.alert_id, e.action FROM alert_events e JOIN alerts a USING (alert_id) "
        "WHERE a.rule = 'flood_depth' ORDER BY e.event_id",
    )
    raised = [r for r in actions if r[1] == "raised"]
    assert len(raised) == 2  # the two floods, each raised once across the restart


async def test_a_pruned_feed_is_counted_and_raises_an_operations_alert(
    db_url: str, storage_strategy: StrategyName
) -> None:
    await registered(db_url)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    async with ProcessingService(settings(db_url, "gap")) as service:
        for sample in depths(t0, [1.0, 1.0, 1.0]):
            await store(db_url, [sample], storage_strategy)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            # processing was away longer than the feed's retention: the first two are gone
            await conn.execute("DELETE FROM reading_feed WHERE seq <= 2")
        await service.check_operations()
        runner = asyncio.create_task(service.run())
        await caught_up(service, await feed_head(db_url))
        service.stop()
        await runner
    assert service.counts["feed_batches_missed"] == 2
    alerts = await rows(
        db_url, "SELECT category, severity, station_id FROM alerts WHERE rule = 'processing_lag'"
    )
    assert alerts == [("operations", "severe", None)]


@contextlib.asynccontextmanager
async def commit_failing(
    pg_proxy: TcpProxy, db_url: str, strategy: StrategyName, shutdown_grace_s: float = 30.0
) -> AsyncIterator[tuple[ProcessingService, asyncio.Task[None]]]:
    """A running service whose commit fails: two flooded readings stored (a raise is due),
    the database cut away from processing, at least one retry seen."""
    await registered(db_url)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    config = settings(pg_proxy.url(db_url), "failing", shutdown_grace_s=shutdown_grace_s)
    service = ProcessingService(config)
    async with service:
        runner = asyncio.create_task(service.run())
        await asyncio.sleep(0.3)  # running and polling the (empty) feed
        pg_proxy.cut()
        await store(db_url, depths(t0, [40.0, 40.0]), strategy)
        async with asyncio.timeout(30):
            while service.counts["commit_retries"] == 0:
                await asyncio.sleep(0.05)
        yield service, runner


async def test_stop_with_the_database_down_ends(
    pg_proxy: TcpProxy, db_url: str, storage_strategy: StrategyName
) -> None:
    async with commit_failing(pg_proxy, db_url, storage_strategy, 1) as (service, runner):
        service.stop()
        stopped_at = asyncio.get_running_loop().time()
        async with asyncio.timeout(40):
            await runner
        stop_s = asyncio.get_running_loop().time() - stopped_at
    pg_proxy.restore()
    assert service.counts["alerts_raise"] == 0  # never committed
    assert service.position == 0
    assert stop_s < 30, f"stop took {stop_s:.0f} s"


async def test_alert_decided_while_the_database_is_down_is_committed_once_it_is_back(
    pg_proxy: TcpProxy, db_url: str, storage_strategy: StrategyName
) -> None:
    async with commit_failing(pg_proxy, db_url, storage_strategy) as (service, runner):
        pg_proxy.restore()
        await caught_up(service, await feed_head(db_url), 60)
        await service.save_state()  # everything decided is committed: taken now
        assert service.counts["snapshots_deferred"] == 0
        service.stop()
        await runner
    actions = await rows(
        db_url,
        "SELECT e.action FROM alert_events e JOIN alerts a USING (alert_id) "
        "WHERE a.rule = 'flood_depth' ORDER BY e.event_id",
    )
    assert [r[0] for r in actions] == ["raised"]
    assert service.counts["readings"] == 2  # decided once, not per attempt
    restarted = ProcessingService(service.settings)
    async with restarted:  # resumes from the snapshot: the sensor was last heard at minute 1
        last_seen_s = restarted.engine.bank.last_seen(f"{FLOOD.station_id}.water_depth")
    assert last_seen_s is not None
