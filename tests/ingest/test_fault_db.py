"""The ingestor under database faults: unavailable for 60 s, restarted, slow.

The outage and the slow link go through a TCP proxy (``tests/fixtures/proxy.py``); the
restart crashes a private, durable PostgreSQL of the test's own and starts it again. In
every case the broker must hold the backlog (the ingestor stops acking and pauses), and
after recovery the database holds exactly the published readings with balanced counters.
"""

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from db import upgrade
from hanoi_ioc.embedded import EmbeddedPostgres
from ingest.service import IngestService
from tests.fixtures.mqtt import Broker
from tests.fixtures.proxy import TcpProxy
from tests.ingest.test_faults import (
    Publisher,
    Running,
    assert_balanced,
    assert_exactly_once,
    publishing,
    register,
    running,
    scalar,
    settings_for,
    station_stream,
    stored_all,
    wait_until,
)

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow, pytest.mark.anyio]


OUTAGE_S = 60.0


def _check_bounded(ingest: Running, receive_maximum: int) -> None:
    """The ingestor is alive and holds no more than its window: the broker has the rest."""
    ingest.assert_alive()
    assert ingest.service.consumer.buffered <= receive_maximum
    assert ingest.service.pipeline.queued_batches <= ingest.service.settings.write_queue_batches


async def _past(publisher: Publisher, count: int) -> bool:
    return publisher.acked >= count


async def test_database_unavailable_for_60_s(
    pg_proxy: TcpProxy, db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    await register(db_url)
    stream = station_stream(topic_root, 3000)
    publisher = Publisher(
        mqtt_broker.host,
        mqtt_broker.port,
        stream.messages,
        rate_per_s=300,
        login=mqtt_broker.login("pub"),
    )
    settings = settings_for(pg_proxy.url(db_url), mqtt_broker, topic_root, receive_maximum=400)
    async with running(settings) as ingest:
        async with publishing(publisher):
            await wait_until(lambda: _past(publisher, 600), 30, "600 messages published")
            pg_proxy.cut()
            cut_at = time.monotonic()
            before = await scalar(db_url, "SELECT count(*) FROM readings")
            while time.monotonic() - cut_at < OUTAGE_S:  # the fault lasts this long
                _check_bounded(ingest, settings.receive_maximum)
                await asyncio.sleep(0.5)
            assert await scalar(db_url, "SELECT count(*) FROM readings") == before
            assert publisher.acked == len(stream.messages), "the broker refused the backlog"
            pg_proxy.restore()
        recovery_s = await wait_until(stored_all(db_url, len(stream.keys)), 120, "all stored")
        await wait_until(lambda: _idle(ingest), 30, "nothing pending")
        _check_bounded(ingest, settings.receive_maximum)
    await assert_exactly_once(db_url, stream)
    stats = ingest.service.stats()
    assert_balanced(stats, len(stream.keys))
    assert ingest.service.counts["stored"] == len(stream.keys)
    assert int(stats["handler_retries"]) > 0
    assert pg_proxy.refused > 0
    assert recovery_s < 90, f"{recovery_s:.0f} s to recover after the database came back"


async def _idle(ingest: Running) -> bool:
    service = ingest.service
    return service.counts["pending_records"] == 0 and service.consumer.buffered == 0


async def _retried(ingest: Running) -> bool:
    return ingest.service.pipeline.counts["handler_retries"] > 0


async def test_database_that_stops_answering_is_given_up_on(
    pg_proxy: TcpProxy, db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    # A partition that sends no reset (dead host, paused VM, dropped NAT entry): a write in
    # flight waits for an answer that never comes. The ingestor must give up on it and retry
    # rather than wait for the kernel's TCP timeout (about 15 min) or, here, for ever.
    await register(db_url)
    stream = station_stream(topic_root, 2000)
    publisher = Publisher(
        mqtt_broker.host,
        mqtt_broker.port,
        stream.messages,
        rate_per_s=500,
        login=mqtt_broker.login("pub"),
    )
    settings = settings_for(
        pg_proxy.url(db_url), mqtt_broker, topic_root, receive_maximum=400,
        write_timeout_s=5.0,  # proposed setting (ignored until it exists: extra="ignore")
    )  # fmt: skip
    async with running(settings) as ingest:
        async with publishing(publisher):
            await wait_until(lambda: _past(publisher, 500), 30, "500 messages published")
            pg_proxy.freeze()
            await wait_until(lambda: _retried(ingest), 30, "the silent database noticed")
            pg_proxy.restore()
        await wait_until(stored_all(db_url, len(stream.keys)), 60, "all stored")
        await wait_until(lambda: _idle(ingest), 30, "nothing pending")
    await assert_exactly_once(db_url, stream)
    assert_balanced(ingest.service.stats(), len(stream.keys))


@pytest.fixture
def private_pg(services_dir: Path) -> Iterator[EmbeddedPostgres]:
    """A durable PostgreSQL of the test's own, which it may crash (committed means on disk).

    (Under the session's services directory, not pytest's tmp_path: another pytest session
    starting meanwhile resets pytest's base directory to 0700, which the PostgreSQL service
    user could then no longer traverse.)
    """
    with EmbeddedPostgres(services_dir / f"pg-{uuid.uuid4().hex[:8]}", durable=True) as server:
        yield server


async def test_database_restart_mid_stream(
    private_pg: EmbeddedPostgres, mqtt_broker: Broker, topic_root: str
) -> None:
    await upgrade(private_pg.url)
    await register(private_pg.url)
    stream = station_stream(topic_root, 3000)
    publisher = Publisher(
        mqtt_broker.host,
        mqtt_broker.port,
        stream.messages,
        rate_per_s=1000,
        login=mqtt_broker.login("pub"),
    )
    settings = settings_for(private_pg.url, mqtt_broker, topic_root, receive_maximum=400)
    async with running(settings) as ingest:
        async with publishing(publisher):
            await wait_until(lambda: _past(publisher, 1000), 30, "1000 messages published")
            await asyncio.to_thread(private_pg.kill)  # immediate shutdown: a crash
            ingest.assert_alive()
            await asyncio.to_thread(private_pg.start)
        await wait_until(stored_all(private_pg.url, len(stream.keys)), 90, "all stored")
        await wait_until(lambda: _idle(ingest), 30, "nothing pending")
    await assert_exactly_once(private_pg.url, stream)
    assert_balanced(ingest.service.stats(), len(stream.keys))
    assert ingest.service.counts["stored"] == len(stream.keys)
    assert ingest.service.pipeline.counts["handler_retries"] > 0


async def test_slow_database_applies_backpressure(
    pg_proxy: TcpProxy, db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    await register(db_url)
    stream = station_stream(topic_root, 3000)
    publisher = Publisher(
        mqtt_broker.host, mqtt_broker.port, stream.messages, login=mqtt_broker.login("pub")
    )  # flat out
    settings = settings_for(pg_proxy.url(db_url), mqtt_broker, topic_root, receive_maximum=200)
    async with running(settings) as ingest:
        pg_proxy.delay_s = 0.03  # every chunk, both ways: each round trip costs 60 ms more
        async with publishing(publisher):
            while publisher.acked < len(stream.messages):
                _check_bounded(ingest, settings.receive_maximum)
                await asyncio.sleep(0.05)
        stored_when_published = await scalar(db_url, "SELECT count(*) FROM readings")
        assert stored_when_published < len(stream.keys), "the database was not slow"
        deadline = time.monotonic() + 90
        while not await stored_all(db_url, len(stream.keys))():
            _check_bounded(ingest, settings.receive_maximum)
            assert time.monotonic() < deadline, "the slow database never caught up"
            await asyncio.sleep(0.1)
        await wait_until(lambda: _idle(ingest), 30, "nothing pending")
    await assert_exactly_once(db_url, stream)
    assert_balanced(ingest.service.stats(), len(stream.keys))
    assert ingest.service.counts["stored"] == len(stream.keys)


async def test_stop_with_the_database_down_ends_and_leaves_the_batch_to_the_broker(
    pg_proxy: TcpProxy, db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    # An operator stops the ingestor (SIGTERM) while the database is down: the stop must end
    # within the shutdown grace instead of retrying for ever, ack nothing it did not commit,
    # and the next run must store everything exactly once.
    await register(db_url)
    stream = station_stream(topic_root, 400)
    publisher = Publisher(
        mqtt_broker.host,
        mqtt_broker.port,
        stream.messages,
        rate_per_s=2000,
        login=mqtt_broker.login("pub"),
    )
    settings = settings_for(pg_proxy.url(db_url), mqtt_broker, topic_root, shutdown_grace_s=2)
    service = IngestService(settings)
    async with service:
        await service.consumer.wait_connected()
        task = asyncio.create_task(service.run())
        pg_proxy.cut()
        async with publishing(publisher):
            await wait_until(lambda: _past(publisher, len(stream.messages)), 30, "published")
        await wait_until(lambda: _retried_service(service), 30, "a failed write")
        service.stop()
        stopped_at = time.monotonic()
        async with asyncio.timeout(20):  # the grace (2 s) bounds even a write in flight
            await task
        stop_s = time.monotonic() - stopped_at
    assert service.consumer.stats.acked == 0  # nothing committed, nothing acknowledged
    assert service.pipeline.counts["unacked_at_shutdown"] > 0
    assert service.counts["pending_records"] > 0  # accounted as pending, not lost
    pg_proxy.restore()
    async with running(settings_for(db_url, mqtt_broker, topic_root)) as ingest:
        await wait_until(stored_all(db_url, len(stream.keys)), 60, "all stored")
        await wait_until(lambda: _idle(ingest), 30, "nothing pending")
    await assert_exactly_once(db_url, stream)
    assert stop_s < 10, f"stop took {stop_s:.0f} s"


async def _retried_service(service: IngestService) -> bool:
    return service.pipeline.counts["handler_retries"] > 0
