"""The whole foundation slice on real services.

A station publishes over MQTT (QoS 1) -> ingest writes with batched COPY and acknowledges only
after the commit -> processing raises a threshold alert -> the alert row is committed and
announced (NOTIFY) -> a WebSocket client of the ops API receives it, and REST lists it.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from db import register_stations
from ingest.service import IngestService
from ops_api.app import create_app
from processing.service import ProcessingService
from processing.settings import ProcessingSettings
from tests.fixtures.mqtt import Broker
from tests.fixtures.readings import FLOOD, TEST_STATIONS, flood_sample
from tests.ingest.test_service import count, publish, settings_for, wait_until
from tests.ops_api.conftest import FLOOD as FLOOD_TOKEN
from tests.ops_api.conftest import TestClient, bearer, make_settings, receive_until

pytestmark = [pytest.mark.e2e, pytest.mark.db, pytest.mark.mqtt, pytest.mark.anyio]


async def test_reading_to_alert_over_websocket_and_rest(
    db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)
    ingest = IngestService(settings_for(db_url, mqtt_broker, topic_root, "e2e"))
    processing = ProcessingService(
        mqtt_broker.as_service(ProcessingSettings(
            database_url=db_url, mqtt_url=mqtt_broker.url, topic_root=topic_root,
            instance=f"e2e-{topic_root.split('/')[0]}", batch_max_age_s=0.05,
        ))
    )  # fmt: skip
    topic = f"{topic_root}/flood/{FLOOD.station_id}/telemetry"
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    depths = [2.0, 6.0, 14.0, 23.0, 31.0]
    messages = [(topic, flood_sample(t0 + timedelta(minutes=i), d)) for i, d in enumerate(depths)]

    with TestClient(create_app(make_settings(db_url))) as client:
        ws_cm = client.websocket_connect(f"/ws?token={FLOOD_TOKEN}")
        ws = ws_cm.__enter__()
        try:
            receive_until(ws, "hello")
            ws.send_json({"type": "subscribe", "channel": "alerts", "min_severity": "minor"})
            receive_until(ws, "subscribed")
            async with ingest, processing:
                await ingest.consumer.wait_connected()
                await processing.consumer.wait_connected()
                runs = [asyncio.create_task(s.run()) for s in (ingest, processing)]
                await asyncio.to_thread(publish, mqtt_broker, messages)

                async def all_acked() -> bool:
                    return all(
                        s.pipeline.counts["acked_messages"] >= len(messages)
                        for s in (ingest, processing)
                    )

                try:
                    await wait_until(all_acked, timeout_s=60)
                except TimeoutError:
                    detail = f"ingest {ingest.stats()}\nprocessing {processing.stats()}"
                    raise AssertionError(detail) from None
                raised: dict[str, Any] = await asyncio.to_thread(
                    receive_until, ws, "alert_event", timeout_s=30.0
                )
                ingest.stop()
                processing.stop()
                await asyncio.gather(*runs)
            alerts = client.get("/api/alerts", headers=bearer(FLOOD_TOKEN)).json()
        finally:
            ws_cm.__exit__(None, None, None)

    assert await count(db_url, "SELECT count(*) FROM readings") == len(depths)
    assert ingest.counts["stored"] == len(depths)
    assert raised["event"]["action"] == "raised"
    assert raised["alert"]["station_id"] == FLOOD.station_id
    assert raised["alert"]["rule"] == "flood_depth"
    assert [a["alert_id"] for a in alerts["alerts"]] == [raised["alert"]["alert_id"]]
    assert alerts["alerts"][0]["severity"] == "severe"  # raised minor, updated as it rose
