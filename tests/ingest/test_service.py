"""The ingest service end to end on a real broker and a real PostgreSQL."""

import asyncio
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from db import register_stations
from ingest.service import IngestService
from ingest.settings import IngestSettings
from tests.fixtures.mqtt import Broker
from tests.fixtures.readings import AIR, FLOOD, TEST_STATIONS, air_sample, flood_sample

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.anyio]


def publish(broker: Broker, messages: list[tuple[str, bytes]], retain: bool = False) -> None:
    """Publish at QoS 1 and wait for every PUBACK (a plain paho client, as a device would)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(*broker.login("pub"))
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [client.publish(t, p, qos=1, retain=retain) for t, p in messages]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def settings_for(db_url: str, broker: Broker, root: str, instance: str = "t") -> IngestSettings:
    name = f"{instance}-{root.split('/')[0]}"
    return IngestSettings.model_validate(
        {
            "database_url": db_url,
            "topic_root": root,
            "instance": name,
            "batch_max_age_s": 0.05,
            "heartbeat_interval_s": 0.2,
            **broker.service_settings("ingest", name),
        }
    )


async def wait_until(predicate: object, timeout_s: float = 15.0) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout_s):
        while not await predicate():
            await asyncio.sleep(0.05)


@pytest.fixture
async def registered(db_url: str) -> str:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)
    return db_url


async def count(db_url: str, sql: str) -> int:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(sql)
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def test_stores_quarantines_and_balances(
    registered: str, mqtt_broker: Broker, topic_root: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    air = f"{topic_root}/air/{AIR.station_id}/telemetry"
    flood = f"{topic_root}/flood/{FLOOD.station_id}/telemetry"
    good = [(air, air_sample(now - timedelta(minutes=i), 30.0 + i)) for i in range(20)]
    good += [(flood, flood_sample(now - timedelta(minutes=i), 2.0)) for i in range(10)]
    bad = [
        (air, b"{not json"),
        (air, air_sample(now + timedelta(seconds=10), 3.0).replace(b"ug/m3", b"ppm", 1)),
        (f"{topic_root}/air/aq-nowhere/telemetry", air_sample(now, 1.0).replace(
            AIR.station_id.encode(), b"aq-nowhere")),
        (air, air_sample(now + timedelta(hours=2), 30.0)),
        # possible but implausible: stored, flagged
        (flood, flood_sample(now + timedelta(seconds=30), 900.0)),
    ]  # fmt: skip
    service = IngestService(settings_for(registered, mqtt_broker, topic_root))
    async with service:
        await service.consumer.wait_connected()
        runner = asyncio.create_task(service.run())
        await asyncio.to_thread(publish, mqtt_broker, good + bad + good[:5])  # 5 redelivered
        await wait_until(lambda: _settled(service, len(good) + len(bad) + 5))
        service.stop()
        await runner
    s, reasons = service.counts, service.quarantine_reasons
    assert s["received_records"] == s["stored"] + s["duplicates"] + s["quarantined"]
    assert s["pending_records"] == 0
    assert s["stored"] == 20 * 2 + 10 + 1 + 1  # no2 beside the bad pm25; the flagged depth
    assert s["duplicates"] == 5 * 2
    assert reasons["malformed_json"] == 1
    assert reasons["bad_unit"] == 1
    assert reasons["unknown_station"] == 2
    assert reasons["future_time"] == 2
    assert await count(registered, "SELECT count(*) FROM readings") == 52
    assert await count(registered, "SELECT count(*) FROM readings WHERE quality = 1") == 1
    assert await count(registered, "SELECT count(*) FROM quarantine") == 4
    assert await count(registered, "SELECT count(*) FROM latest") == 3
    assert await count(registered, "SELECT max(value)::int FROM latest_readings "
                       "WHERE quantity = 'pm25'") == 30  # fmt: skip
    assert await count(registered, "SELECT count(*) FROM service_heartbeats") == 1


async def _settled(service: IngestService, messages: int) -> bool:
    acked = service.pipeline.counts["acked_messages"]
    return acked >= messages and service.counts["pending_records"] == 0


async def test_status_topic_records_transitions(
    registered: str, mqtt_broker: Broker, topic_root: str
) -> None:
    status = f"{topic_root}/flood/{FLOOD.station_id}/status"
    service = IngestService(settings_for(registered, mqtt_broker, topic_root, "st"))
    async with service:
        await service.consumer.wait_connected()
        runner = asyncio.create_task(service.run())
        await asyncio.to_thread(publish, mqtt_broker, [(status, b"online")], True)
        await asyncio.to_thread(publish, mqtt_broker, [(status, b"online")], True)
        await asyncio.to_thread(publish, mqtt_broker, [(status, b'{"state":"offline"}')], True)
        await wait_until(lambda: _settled(service, 3))
        service.stop()
        await runner
    states = await count(registered, "SELECT count(*) FROM sensor_status")
    assert states == 2  # online, offline: the repeated "online" is not a transition
    assert (
        await count(registered, "SELECT count(*) FROM station_state WHERE state = 'offline'") == 1
    )


async def test_restart_receives_what_was_published_while_down(
    registered: str, mqtt_broker: Broker, topic_root: str
) -> None:
    settings = settings_for(registered, mqtt_broker, topic_root, "rs")
    air = f"{topic_root}/air/{AIR.station_id}/telemetry"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    async with IngestService(settings) as first:  # establishes the persistent session
        await first.consumer.wait_connected()
    batch = [(air, air_sample(start + timedelta(seconds=i), 10.0)) for i in range(300)]
    await asyncio.to_thread(publish, mqtt_broker, batch)  # nobody is connected
    service = IngestService(settings)
    async with service:
        runner = asyncio.create_task(service.run())
        await wait_until(lambda: _settled(service, 300))
        service.stop()
        await runner
    assert await count(registered, "SELECT count(*) FROM readings") == 600


async def test_silent_station_becomes_stale_and_resumes_with_data(
    registered: str, mqtt_broker: Broker, topic_root: str
) -> None:
    air = f"{topic_root}/air/{AIR.station_id}/telemetry"
    now = datetime.now(UTC).replace(microsecond=0)
    service = IngestService(settings_for(registered, mqtt_broker, topic_root, "sl"))
    async with service:
        await service.consumer.wait_connected()
        runner = asyncio.create_task(service.run())
        await asyncio.to_thread(publish, mqtt_broker, [(air, air_sample(now, 10.0))])
        await wait_until(lambda: _settled(service, 1))
        # The station falls silent: its last data arrived an hour ago (60 s interval, k = 3).
        async with await psycopg.AsyncConnection.connect(registered) as conn:
            await conn.execute("UPDATE latest SET received_at = received_at - interval '1 hour'")
        await service._maintain()  # the periodic job, run now
        state = "SELECT state FROM station_state WHERE station_id = 'aq-test-hoan-kiem'"
        async with await psycopg.AsyncConnection.connect(registered) as conn:
            assert (await (await conn.execute(state)).fetchone()) == ("stale",)
        await asyncio.to_thread(
            publish, mqtt_broker, [(air, air_sample(now + timedelta(seconds=60), 11.0))]
        )
        await wait_until(lambda: _settled(service, 2))
        service.stop()
        await runner
    async with await psycopg.AsyncConnection.connect(registered) as conn:
        cur = await conn.execute(
            "SELECT state, reason FROM sensor_status WHERE station_id = %s ORDER BY recorded_at",
            (AIR.station_id,),
        )
        history = await cur.fetchall()
    assert [h[0] for h in history] == ["stale", "online"]  # history, not a flag
    assert "data resumed" in str(history[1][1])
    assert service.stats()["status_changes"] == 1
