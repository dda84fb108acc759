"""Start-up and recovery: a service started while the database or the broker is down waits,
with backoff, and says so; after an outage the first commit follows the database's return
within seconds (the pool does not sit out a grown reconnection backoff)."""

import asyncio
import logging
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from ingest.service import IngestService
from tests.fixtures.mqtt import Broker
from tests.fixtures.proxy import TcpProxy
from tests.ingest.test_faults import (
    Publisher,
    publishing,
    register,
    running,
    scalar,
    settings_for,
    station_stream,
    wait_until,
)
from tests.ingest.test_service import publish

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow, pytest.mark.anyio]

OUTAGE_S = float(os.environ.get("HANOI_TEST_OUTAGE_S", "30"))
"""The outage of the recovery test (180 s reproduces the issue's report; 30 s in the suite)."""
LEGACY: dict[str, object] = (
    {"pool_timeout_s": 30.0, "reconnect_timeout_s": 300.0, "retry_max_s": 30.0}
    if os.environ.get("HANOI_TEST_OUTAGE_LEGACY")
    else {}
)
"""The settings before the fix (psycopg_pool's defaults, a 30 s retry cap): for measuring."""


async def test_started_while_the_database_is_down_it_waits_and_says_so(
    pg_proxy: TcpProxy, db_url: str, mqtt_broker: Broker, topic_root: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    await register(db_url)
    pg_proxy.cut()
    service = IngestService(settings_for(pg_proxy.url(db_url), mqtt_broker, topic_root))
    caplog.set_level(logging.WARNING, logger="stream.service")
    entering = asyncio.create_task(service.__aenter__())
    await asyncio.sleep(3.0)
    assert not entering.done(), "it gave up (or got through) with the database down"
    waits = [r.getMessage() for r in caplog.records if "waiting for the database" in r.getMessage()]
    assert len(waits) >= 2, waits  # said so, and tried again
    pg_proxy.restore()
    async with asyncio.timeout(30):
        await entering
    try:
        await service.consumer.wait_connected()
        runner = asyncio.create_task(service.run())
        await asyncio.to_thread(publish, mqtt_broker, station_stream(topic_root, 1).messages)
        async with asyncio.timeout(20):
            while service.counts["stored"] < 8:
                await asyncio.sleep(0.05)
        service.stop()
        await runner
    finally:
        await service.__aexit__(None, None, None)


async def test_started_while_the_broker_is_down_it_waits_and_says_so(
    private_broker: Broker, db_url: str, topic_root: str, caplog: pytest.LogCaptureFixture
) -> None:
    await register(db_url)
    assert private_broker.embedded is not None
    settings = settings_for(db_url, private_broker, topic_root)
    private_broker.embedded.stop()
    caplog.set_level(logging.WARNING, logger="stream.consumer")
    service = IngestService(settings)
    async with service:  # the database is there: it starts, the consumer keeps trying
        runner = asyncio.create_task(service.run())
        await asyncio.sleep(3.0)
        assert not runner.done()
        tries = [r for r in caplog.records if "cannot reach the broker" in r.getMessage()]
        assert len(tries) >= 2
        await asyncio.to_thread(private_broker.embedded.start)
        await service.consumer.wait_connected(30)
        messages = station_stream(topic_root, 1).messages
        await asyncio.to_thread(publish, private_broker, messages)
        async with asyncio.timeout(20):
            while service.counts["stored"] < 8:
                await asyncio.sleep(0.05)
        service.stop()
        await runner


async def test_the_first_commit_follows_the_databases_return_within_seconds(
    pg_proxy: TcpProxy, db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    await register(db_url)
    stream = station_stream(topic_root, 4000, start=datetime.now(UTC) - timedelta(hours=3))
    publisher = Publisher(mqtt_broker.host, mqtt_broker.port, stream.messages, rate_per_s=40,
                          login=mqtt_broker.login("pub"))  # fmt: skip
    settings = settings_for(pg_proxy.url(db_url), mqtt_broker, topic_root, receive_maximum=400,
                            **LEGACY)  # fmt: skip
    async with running(settings) as ingest, publishing(publisher, timeout_s=OUTAGE_S + 300):
        await wait_until(lambda: _stored(db_url, 80), 30, "a first batch stored")
        pg_proxy.cut()
        await asyncio.sleep(OUTAGE_S)
        before = await scalar(db_url, "SELECT count(*) FROM readings")
        batches = ingest.service.pipeline.counts["batches"]
        pg_proxy.restore()
        back = time.monotonic()
        while ingest.service.pipeline.counts["batches"] == batches:
            ingest.assert_alive()
            assert time.monotonic() - back < 60, "nothing committed a minute after the return"
            await asyncio.sleep(0.05)
        first_commit_s = time.monotonic() - back
        publisher.stop()
    print(f"\nfirst commit {first_commit_s:.1f} s after a {OUTAGE_S:.0f} s outage ended")  # noqa: T201
    assert await scalar(db_url, "SELECT count(*) FROM readings") > before
    # The retry waits at most retry_max_s (3 s) and each retry connects at once.
    if not LEGACY:
        assert first_commit_s < settings.retry_max_s + 7.0, first_commit_s


async def _stored(db_url: str, n: int) -> bool:
    return await scalar(db_url, "SELECT count(*) FROM readings") >= n
