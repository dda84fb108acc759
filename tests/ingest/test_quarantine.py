"""Quarantine replay: refused for an unknown station, stored after the station is registered."""

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from db import register_stations
from ingest.quarantine import list_quarantine, replay_quarantine
from ingest.service import IngestService
from tests.fixtures.mqtt import Broker
from tests.fixtures.readings import AIR, FLOOD, air_sample
from tests.ingest.test_service import count, publish, settings_for, wait_until

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.anyio]


async def test_replay_after_registering_the_station(
    db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, [FLOOD])  # the air station is not registered yet
    topic = f"{topic_root}/air/{AIR.station_id}/telemetry"
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    service = IngestService(settings_for(db_url, mqtt_broker, topic_root, "q"))
    async with service:
        await service.consumer.wait_connected()
        runner = asyncio.create_task(service.run())
        await asyncio.to_thread(
            publish, mqtt_broker, [(topic, air_sample(at, 12.0)), (topic, b"{")]
        )

        async def settled() -> bool:
            return service.pipeline.counts["acked_messages"] >= 2

        await wait_until(settled)
        service.stop()
        await runner
    assert service.quarantine_reasons == {"unknown_station": 2, "malformed_json": 1}
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        rows = await list_quarantine(conn)
        assert {r.reason for r in rows} == {"unknown_station", "malformed_json"}
        await register_stations(conn, [AIR])
    result = await replay_quarantine(db_url, root=topic_root, reason="unknown_station")
    assert (result.messages, result.stored, result.still_quarantined) == (1, 2, 0)
    assert await count(db_url, "SELECT count(*) FROM readings") == 2
    assert await count(db_url, "SELECT count(*) FROM quarantine WHERE replayed_at IS NULL") == 1
    again = await replay_quarantine(db_url, root=topic_root)
    assert (again.messages, again.stored, again.still_quarantined) == (1, 0, 1)  # still broken
