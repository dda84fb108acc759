"""Processing on real services: readings over MQTT become committed, announced alerts."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from db import register_stations
from processing.service import ProcessingService
from processing.settings import ProcessingSettings
from tests.fixtures.mqtt import Broker
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.readings import AIR, FLOOD, TEST_STATIONS, air_sample, flood_sample
from tests.ingest.test_service import publish

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.anyio]


async def test_flood_alert_is_committed_then_announced(
    db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)
    settings = mqtt_broker.as_service(ProcessingSettings(
        database_url=db_url, mqtt_url=mqtt_broker.url, topic_root=topic_root,
        instance=topic_root.split("/")[0], batch_max_age_s=0.05, clear_after_samples=2,
    ))  # fmt: skip
    topic = f"{topic_root}/flood/{FLOOD.station_id}/telemetry"
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    depths = [1, 4, 12, 21, 34, 26, 5, 2, 1]
    messages = [(topic, flood_sample(t0 + timedelta(minutes=i), d)) for i, d in enumerate(depths)]
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as listener:
        await listener.execute("LISTEN alert_events")
        service = ProcessingService(settings)
        async with service:
            await service.consumer.wait_connected()
            runner = asyncio.create_task(service.run())
            await asyncio.to_thread(publish, mqtt_broker, messages)
            heard: list[int] = []
            async with asyncio.timeout(15):
                # Until the flood alert's clear is announced (the forecast alert that the
                # fast rise also raises may be announced in between).
                while service.counts["alerts_clear"] < 1 or len(heard) < 3:
                    async for note in listener.notifies(timeout=0.2):
                        heard.append(int(note.payload))
            service.stop()
            await runner
        async for note in listener.notifies(timeout=0.2):
            heard.append(int(note.payload))
        cur = await listener.execute(
            "SELECT e.event_id, e.action, a.state, a.severity, a.rule, a.details, a.alert_id "
            "FROM alert_events e JOIN alerts a USING (alert_id) ORDER BY e.event_id"
        )
        rows = await cur.fetchall()
    flood = [r for r in rows if r[4] == "flood_depth"]
    # 12 cm alone raises nothing (a raise needs two readings at a level); then it follows
    assert [r[1] for r in flood] == ["raised", "updated", "cleared"]
    assert heard == [r[0] for r in rows]  # announced in order, ids of committed rows
    assert flood[-1][2:4] == ("cleared", "severe")
    details = flood[-1][5]
    # event times of the transitions, in the data's time (not the wall clock)
    assert details["raised_observed_at"] == (t0 + timedelta(minutes=3)).isoformat()[:19] + "Z"
    assert details["first_severe_at"] == (t0 + timedelta(minutes=4)).isoformat()[:19] + "Z"
    assert details["cleared_observed_at"] == (t0 + timedelta(minutes=7)).isoformat()[:19] + "Z"
    still_open = {r[6] for r in rows if r[2] != "cleared"}
    assert service.stats()["open_alerts"] == len(still_open)


async def test_a_silent_sensor_raises_and_clears_through_the_lifecycle(
    db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)
    settings = mqtt_broker.as_service(ProcessingSettings(
        database_url=db_url, mqtt_url=mqtt_broker.url, topic_root=topic_root,
        instance=f"silence-{topic_root.split('/')[0]}", batch_max_age_s=0.05,
    ))  # fmt: skip
    flood_topic = f"{topic_root}/flood/{FLOOD.station_id}/telemetry"
    air_topic = f"{topic_root}/air/{AIR.station_id}/telemetry"
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=45)
    messages = []
    for minute in range(40):
        at = t0 + timedelta(minutes=minute)
        messages.append((air_topic, air_sample(at, 30.0 + minute % 3)))
        if not 10 <= minute < 30:  # the flood sensor says nothing for twenty minutes
            messages.append((flood_topic, flood_sample(at, 0.5)))
    service = ProcessingService(settings)
    async with service:
        await service.consumer.wait_connected()
        runner = asyncio.create_task(service.run())
        await asyncio.to_thread(publish, mqtt_broker, messages)
        async with asyncio.timeout(30):
            while service.pipeline.counts["acked_messages"] < len(messages):
                await asyncio.sleep(0.05)
        service.stop()
        await runner
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT a.dedup_key, a.category, a.quantity, a.title_vi, a.title_en, a.state, "
            "a.details, array_agg(e.action ORDER BY e.event_id) FROM alerts a "
            "JOIN alert_events e USING (alert_id) GROUP BY a.alert_id"
        )
        rows = await cur.fetchall()
    (row,) = [r for r in rows if r[0].startswith("sensor_silent:")]
    key, category, quantity, title_vi, title_en, state, details, actions = row
    assert key == f"sensor_silent:{FLOOD.station_id}"
    assert (category, quantity, state) == ("sensor_health", None, "cleared")
    assert title_vi.startswith("Mất tín hiệu")
    assert title_en.startswith("Sensor silent")
    assert actions == ["raised", "cleared"]
    # judged in event time: silent from minute 9, called about five minutes later
    raised = datetime.fromisoformat(details["raised_observed_at"].replace("Z", "+00:00"))
    assert t0 + timedelta(minutes=13) <= raised <= t0 + timedelta(minutes=16)
    cleared = datetime.fromisoformat(details["cleared_observed_at"].replace("Z", "+00:00"))
    assert t0 + timedelta(minutes=29) <= cleared <= t0 + timedelta(minutes=31)


@contextlib.asynccontextmanager
async def commit_failing(
    pg_proxy: TcpProxy, db_url: str, broker: Broker, root: str, shutdown_grace_s: float = 30.0
) -> AsyncIterator[tuple[ProcessingService, asyncio.Task[None], int]]:
    """A running service whose alert commit is failing: the database cut away, two flooded
    readings published (a raise is due) and at least one retry seen. Yields the service, its
    run task and the number of messages published."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)
    config = broker.as_service(ProcessingSettings(
        database_url=pg_proxy.url(db_url), mqtt_url=broker.url, topic_root=root,
        instance=root.split("/")[0], batch_max_age_s=0.05, shutdown_grace_s=shutdown_grace_s,
    ))  # fmt: skip
    topic = f"{root}/flood/{FLOOD.station_id}/telemetry"
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    service = ProcessingService(config)
    async with service:
        await service.consumer.wait_connected()
        runner = asyncio.create_task(service.run())
        pg_proxy.cut()
        flooded = [(topic, flood_sample(t0 + timedelta(minutes=i), 40.0)) for i in range(2)]
        await asyncio.to_thread(publish, broker, flooded)
        async with asyncio.timeout(30):
            while service.pipeline.counts["handler_retries"] == 0:
                await asyncio.sleep(0.05)
        yield service, runner, len(flooded)


async def test_stop_with_the_database_down_ends(
    pg_proxy: TcpProxy, db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    # SIGTERM while the database is away: the failing batch is retried for the grace only,
    # the last snapshot and heartbeat are given up on, nothing is acknowledged, and run()
    # returns instead of hanging on a connection that never comes.
    failing = commit_failing(pg_proxy, db_url, mqtt_broker, topic_root, shutdown_grace_s=1)
    async with failing as (service, runner, _):
        service.stop()
        stopped_at = asyncio.get_running_loop().time()
        async with asyncio.timeout(40):
            await runner
        stop_s = asyncio.get_running_loop().time() - stopped_at
    pg_proxy.restore()
    assert service.consumer.stats.acked == 0
    assert service.pipeline.counts["unacked_at_shutdown"] >= 1
    assert service.counts["alerts_raise"] == 0  # decided once, never committed
    assert stop_s < 30, f"stop took {stop_s:.0f} s"


async def test_alert_decided_while_the_database_is_down_is_committed_once_it_is_back(
    pg_proxy: TcpProxy, db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    # The engine decides a batch once; a failed commit is retried with the same decision
    # (deciding again would find the alert already open in memory and never store it).
    async with commit_failing(pg_proxy, db_url, mqtt_broker, topic_root) as failing:
        service, runner, published = failing
        pg_proxy.restore()
        async with asyncio.timeout(60):
            while service.consumer.stats.acked < published:
                await asyncio.sleep(0.05)
        service.stop()
        await runner
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT e.action FROM alert_events e JOIN alerts a USING (alert_id) "
            "WHERE a.rule = 'flood_depth' ORDER BY e.event_id"
        )
        actions = [r[0] for r in await cur.fetchall()]
    assert actions == ["raised"]
    assert service.counts["readings"] == published  # decided once, not per attempt


async def test_the_detector_snapshot_holds_only_acknowledged_batches(
    pg_proxy: TcpProxy, db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    # A snapshot that had learnt from a batch the broker will redeliver (decided, not yet
    # acknowledged) would make a restarted service learn it twice: it waits, or is skipped.
    async with commit_failing(pg_proxy, db_url, mqtt_broker, topic_root) as failing:
        service, runner, published = failing
        await service.save_state()
        assert service.counts["snapshots_deferred"] == 1
        pg_proxy.restore()
        async with asyncio.timeout(60):
            while service.consumer.stats.acked < published:
                await asyncio.sleep(0.05)
        await service.save_state()  # everything learnt is acknowledged now
        assert service.counts["snapshots_deferred"] == 1
        service.stop()
        await runner
    restarted = ProcessingService(service.settings)
    async with restarted:  # resumes from the snapshot: the sensor was last heard at minute 1
        last_seen_s = restarted.engine.bank.last_seen(f"{FLOOD.station_id}.water_depth")
    assert last_seen_s is not None  # a cold bank has never heard the sensor
    minutes_ago = (datetime.now(UTC).timestamp() - last_seen_s) / 60.0
    assert 3.0 < minutes_ago < 6.0  # the second reading, published for "now - 4 min"
