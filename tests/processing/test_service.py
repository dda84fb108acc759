"""Processing on real services: readings over MQTT become committed, announced alerts."""

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest.registry import register_stations
from processing.service import ProcessingService
from processing.settings import ProcessingSettings
from tests.fixtures.mqtt import Broker
from tests.fixtures.readings import FLOOD, TEST_STATIONS, flood_sample
from tests.ingest.test_service import publish

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.anyio]


async def test_flood_alert_is_committed_then_announced(
    db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)
    settings = ProcessingSettings(
        database_url=db_url, mqtt_url=mqtt_broker.url, topic_root=topic_root,
        instance=topic_root.split("/")[0], batch_max_age_s=0.05, clear_after_samples=2,
    )  # fmt: skip
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
