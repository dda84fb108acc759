"""The ingestor itself under faults: SIGKILL in the middle of a write, and its first start.

``python -m ingest`` runs as a child process so it can really be killed while a batch's
transaction is open; the restarted process must store exactly what the first did not, once.
"""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ingest.service import IngestService
from tests.fixtures.mqtt import Broker
from tests.ingest.test_faults import (
    Message,
    Publisher,
    Stream,
    assert_balanced,
    assert_exactly_once,
    publishing,
    register,
    scalar,
    settings_for,
    station_stream,
    stored_all,
    wait_until,
)

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow, pytest.mark.anyio]

REPO = Path(__file__).resolve().parents[2]


async def _past(publisher: Publisher, count: int) -> bool:
    return publisher.acked >= count


# -- SIGKILL of the ingestor -----------------------------------------------------------------


@contextlib.contextmanager
def ingest_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m ingest`` as a child process (killed if the test leaves it running)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest"], env=env, cwd=REPO, stdout=out, stderr=out
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def heartbeat_stats(db_url: str, instance: str) -> dict[str, object]:
    """The counters the instance last reported."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT stats FROM service_heartbeats WHERE service = 'ingest' AND instance = %s",
            (instance,),
        )
        row = await cur.fetchone()
    stats = row[0] if row else {}
    return dict(json.loads(stats) if isinstance(stats, str) else stats)


_WRITING = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
  AND state <> 'idle' AND query !~ 'service_heartbeats'
  AND query ~ '(ingest_staging|INSERT INTO latest|rollup_invalidations|COMMIT)'"""


async def _kill_inside_a_write(
    db_url: str, proc: subprocess.Popen[bytes], timeout_s: float
) -> bool:
    """SIGKILL ``proc`` as soon as one of its write transactions is open."""
    deadline = time.monotonic() + timeout_s
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            cur = await conn.execute(_WRITING)
            row = await cur.fetchone()
            if row and row[0]:
                os.kill(proc.pid, signal.SIGKILL)
                return True
    os.kill(proc.pid, signal.SIGKILL)
    return False


async def test_sigkill_mid_batch_then_restart(
    mqtt_broker: Broker, db_url: str, topic_root: str, tmp_path: Path
) -> None:
    await register(db_url)
    instance = "k-" + topic_root.split("/")[0]
    login = mqtt_broker.service_settings("ingest", instance)
    env = os.environ | {
        "DATABASE_URL": db_url, "MQTT_URL": str(login["mqtt_url"]), "TOPIC_ROOT": topic_root,
        **({"INGEST_MQTT_PASSWORD_FILE": str(login["mqtt_password_file"])}
           if "mqtt_password_file" in login else {}),
        "INGEST_INSTANCE": instance, "INGEST_BATCH_MAX_AGE_S": "0.05",
        "INGEST_HEARTBEAT_INTERVAL_S": "0.2", "INGEST_RECEIVE_MAXIMUM": "1000",
    }  # fmt: skip
    probe = station_stream(topic_root, 1, start=datetime.now(UTC) - timedelta(days=1))
    stream = station_stream(topic_root, 6000)
    expected = stream.keys | probe.keys
    log = tmp_path / "ingest.log"
    with ingest_process(env, log) as first:
        await wait_until(lambda: _reported_connected(db_url, instance), 30, "ingestor connected")
        await asyncio.to_thread(_publish_now, mqtt_broker, probe.messages)
        await wait_until(stored_all(db_url, len(probe.keys)), 30, "the probe stored")
        publisher = Publisher(
            mqtt_broker.host,
            mqtt_broker.port,
            stream.messages,
            rate_per_s=3000,
            login=mqtt_broker.login("pub"),
        )
        async with publishing(publisher):
            await wait_until(lambda: _past(publisher, 1000), 30, "1000 messages published")
            caught = await _kill_inside_a_write(db_url, first, timeout_s=20)
            assert await asyncio.to_thread(first.wait, 10) == -signal.SIGKILL
        assert caught, "never saw the ingestor inside a write transaction"
        stored_at_kill = await scalar(db_url, "SELECT count(*) FROM readings")
        assert stored_at_kill < len(expected), "the kill came after the stream was stored"
    with ingest_process(env, log) as second:
        await wait_until(stored_all(db_url, len(expected)), 60, "every reading stored")
        await wait_until(lambda: _reported_settled(db_url, instance), 30, "nothing pending")
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 30) == 0, log.read_text()[-3000:]
    await assert_exactly_once(db_url, Stream([], frozenset(expected)))
    stats = await heartbeat_stats(db_url, instance)  # the clean shutdown's final heartbeat
    assert_balanced(stats, len(expected))
    assert stats["stored"] == len(expected) - stored_at_kill  # the rest, once


async def _reported_connected(db_url: str, instance: str) -> bool:
    return int(str((await heartbeat_stats(db_url, instance)).get("mqtt_connects", 0))) >= 1


async def _reported_settled(db_url: str, instance: str) -> bool:
    stats = await heartbeat_stats(db_url, instance)
    return stats.get("pending_records") == 0 and stats.get("buffered_messages") == 0


def _publish_now(broker: Broker, messages: Sequence[Message]) -> None:
    Publisher(broker.host, broker.port, messages, login=broker.login("pub")).run(timeout_s=30)


# -- the first start ------------------------------------------------------------------------


async def test_wait_connected_means_subscribed(
    mqtt_broker: Broker, db_url: str, topic_root: str
) -> None:
    await register(db_url)
    stream = station_stream(topic_root, 1)
    service = IngestService(settings_for(db_url, mqtt_broker, topic_root))
    async with service:
        await service.consumer.wait_connected()
        # A device publishes at this very moment, before the loop runs again: the ingestor
        # said it was subscribed, so the message must reach it.
        Publisher(
            mqtt_broker.host, mqtt_broker.port, stream.messages, login=mqtt_broker.login("pub")
        ).run(timeout_s=10)
        task = asyncio.create_task(service.run())
        try:
            await wait_until(stored_all(db_url, len(stream.keys)), 5, fail=False)
            assert await scalar(db_url, "SELECT count(*) FROM readings") == len(stream.keys), (
                "a message published right after wait_connected() returned was lost: the "
                "consumer reports 'connected' before the broker acknowledged the subscription"
            )
        finally:
            service.stop()
            await task


# -- cancellation -------------------------------------------------------------------------------


def _pipeline_tasks() -> list[str]:
    return sorted(
        t.get_name()
        for t in asyncio.all_tasks()
        if t.get_name().startswith("pipeline-") and not t.done()
    )


async def test_cancelling_the_service_leaves_no_task_behind(
    mqtt_broker: Broker, db_url: str, topic_root: str
) -> None:
    # A supervisor (TaskGroup, asyncio.run on SIGINT, a test) cancels run(): the consuming
    # and handling tasks must end with it, not keep consuming and acking on their own.
    await register(db_url)
    service = IngestService(settings_for(db_url, mqtt_broker, topic_root))
    async with service:
        task = asyncio.create_task(service.run())

        async def started() -> bool:
            return len(_pipeline_tasks()) == 2

        await wait_until(started, 10, "the pipeline running")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        left = _pipeline_tasks()
        for name in left:  # do not leak them into the next test
            next(t for t in asyncio.all_tasks() if t.get_name() == name).cancel()
        assert not left, f"still running after run() was cancelled: {left}"
