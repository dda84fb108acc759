"""The ingestor under faults, on real services: broker restart and SIGKILL of the ingestor.

Every test publishes a stream at QoS 1 with an at-least-once publisher (whatever the broker
did not PUBACK is published again after a reconnect), injects the fault mid-stream, lets the
system recover and then checks the two invariants of the design:

- the set of readings in the database equals the set published (distinct (station,
  quantity, time) keys): none missing, none duplicated (the key is unique, so a duplicate
  would have to be a second key);
- the counters balance: ``received_records = stored + duplicates + quarantined`` with nothing
  pending, and ``stored`` equals the number of distinct readings.

The helpers here are shared by the other fault modules: ``test_fault_db.py`` (database
unavailable, restarted, slow, silent), ``test_fault_ingestor.py`` (SIGKILL mid-batch, first
start) and the fuzzing (``test_fuzz.py``, ``test_fault_poison.py``).
"""

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from contract import Domain, Quantity, Sensor, Station, StationId, encode_telemetry
from db import register_stations
from ingest.service import IngestService
from ingest.settings import IngestSettings
from tests.fixtures.mqtt import Broker

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow, pytest.mark.anyio]

AIR_QUANTITIES = (
    Quantity.PM25, Quantity.PM10, Quantity.NO2, Quantity.SO2, Quantity.CO, Quantity.O3,
    Quantity.AIR_TEMPERATURE, Quantity.RELATIVE_HUMIDITY,
)  # fmt: skip
STATIONS = tuple(
    Station(
        StationId(f"aq-fault-{i:02d}"), Domain.AIR, f"Trạm thử {i}", "Cầu Giấy", 21.03, 105.80,
        "urban", tuple(Sensor(q, 60.0) for q in AIR_QUANTITIES),
    )
    for i in range(10)
)  # fmt: skip

Key = tuple[str, str, datetime]
Message = tuple[str, bytes]


# -- the published stream ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stream:
    """Station samples (8 readings per message) and the readings they carry."""

    messages: list[Message]
    keys: frozenset[Key]


def station_stream(root: str, count: int, *, start: datetime | None = None) -> Stream:
    """``count`` station messages, round-robin over :data:`STATIONS`, one second apart each."""
    base = start or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    messages: list[Message] = []
    keys: set[Key] = set()
    for i in range(count):
        station = STATIONS[i % len(STATIONS)]
        at = base + timedelta(seconds=i // len(STATIONS), microseconds=i % 1000)
        values = [(q, float(10 + (i + j) % 40)) for j, q in enumerate(AIR_QUANTITIES)]
        topic = f"{root}/air/{station.station_id}/telemetry"
        messages.append((topic, encode_telemetry(station.station_id, at, values, seq=i)))
        keys |= {(station.station_id, q.value, at) for q in AIR_QUANTITIES}
    return Stream(messages, frozenset(keys))


# -- an at-least-once publisher -----------------------------------------------------------------


@dataclass
class Publisher:
    """Publishes at QoS 1 until every message is PUBACKed, reconnecting across broker restarts.

    Runs in a thread (:meth:`run`); ``acked`` tells the test how far the stream is.
    """

    host: str
    port: int
    messages: Sequence[Message]
    rate_per_s: float | None = None
    window: int = 200
    login: tuple[str, str] | None = None
    protocol: MQTTProtocolVersion = mqtt.MQTTv5
    acked: int = 0
    refused: int = 0
    """Messages the broker refused for good (a PUBACK with an error code)."""
    sessions: int = 0
    _done: list[bool] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self, timeout_s: float = 120.0) -> None:
        """Publish everything (raises TimeoutError when the broker never takes it all)."""
        self._done = [False] * len(self.messages)
        deadline = time.monotonic() + timeout_s
        started = time.monotonic()
        while self.acked < len(self.messages) and not self._stop.is_set():
            if time.monotonic() > deadline:
                msg = f"published only {self.acked} of {len(self.messages)}"
                raise TimeoutError(msg)
            self._session(started, deadline)

    def stop(self) -> None:
        """Give up (used when a test fails half-way)."""
        self._stop.set()

    def _session(self, started: float, deadline: float) -> None:
        self.sessions += 1
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=self.protocol)
        client.max_inflight_messages_set(self.window)
        if self.login is not None:
            client.username_pw_set(*self.login)
        inflight: dict[int, int] = {}
        state = {"up": False, "lost": False}

        def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
            state["up"] = not getattr(rc, "is_failure", False)
            state["lost"] = not state["up"]

        def on_disconnect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
            state["lost"] = True

        def on_publish(c: mqtt.Client, u: object, mid: int, rc: object, p: object) -> None:
            index = inflight.pop(mid, None)
            if index is not None:  # acknowledged: taken, or refused for good
                self._done[index] = True
                self.acked += 1
                self.refused += bool(getattr(rc, "is_failure", False))

        client.on_connect, client.on_disconnect = on_connect, on_disconnect
        client.on_publish = on_publish
        try:
            client.connect(self.host, self.port, keepalive=5)
            connect_by = min(deadline, time.monotonic() + 5)
            while not state["up"] and not state["lost"] and time.monotonic() < connect_by:
                client.loop(0.05)
            if not state["up"]:
                return
            pending = [i for i, done in enumerate(self._done) if not done]
            for sent, index in enumerate(pending):
                while len(inflight) >= self.window and not state["lost"]:
                    client.loop(0.01)
                if state["lost"] or self._stop.is_set():
                    return
                if self.rate_per_s is not None:
                    ahead = started + (len(self._done) - len(pending) + sent) / self.rate_per_s
                    while time.monotonic() < ahead and not state["lost"]:
                        client.loop(min(0.01, max(0.0, ahead - time.monotonic())))
                info = client.publish(*self.messages[index], qos=1)
                inflight[info.mid] = index
                if sent % 32 == 0:
                    client.loop(0)
            while inflight and not state["lost"] and time.monotonic() < deadline:
                client.loop(0.05)
        except OSError:
            time.sleep(0.1)  # broker down: try again
        finally:
            with contextlib.suppress(Exception):
                client.disconnect()


@contextlib.asynccontextmanager
async def publishing(publisher: Publisher, timeout_s: float = 120.0) -> AsyncIterator[Publisher]:
    """Run ``publisher`` in a thread for the duration of the block, and wait for it at the end."""
    task = asyncio.create_task(asyncio.to_thread(publisher.run, timeout_s))
    try:
        yield publisher
        await task
    finally:
        publisher.stop()
        with contextlib.suppress(Exception):
            await task


# -- the ingestor and the database ----------------------------------------------------------


def settings_for(db_url: str, broker: Broker, root: str, **overrides: object) -> IngestSettings:
    """Settings of an in-process ingestor with short timers, and its own broker user."""
    instance = str(overrides.get("instance", "f-" + root.split("/")[0]))
    values: dict[str, object] = {
        "database_url": db_url, "topic_root": root, "instance": instance,
        "batch_max_age_s": 0.05, "heartbeat_interval_s": 0.5, "maintenance_interval_s": 5.0,
        **broker.service_settings("ingest", instance),
    }  # fmt: skip
    values.update(overrides)
    return IngestSettings.model_validate(values)


@dataclass(frozen=True, slots=True)
class Running:
    """An ingestor running in this process."""

    service: IngestService
    task: "asyncio.Task[None]"

    def assert_alive(self) -> None:
        """The service loop has not ended (crashed)."""
        if self.task.done():
            self.task.result()  # raises what killed it
            pytest.fail("the ingestor stopped by itself")


@contextlib.asynccontextmanager
async def running(settings: IngestSettings) -> AsyncIterator[Running]:
    """Run an :class:`IngestService` until the block ends, then stop it cleanly."""
    service = IngestService(settings)
    async with service:
        await service.consumer.wait_connected()  # returns once the broker sent its SUBACK
        task = asyncio.create_task(service.run(), name="ingest-under-test")
        try:
            yield Running(service, task)
        except BaseException:
            # A failed test: a stuck batch would keep a clean stop (and even a cancellation,
            # see test_fault_db) waiting for ever, so give the task a few seconds only.
            task.cancel()
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(5):
                    await task
            raise
        service.stop()
        async with asyncio.timeout(60):
            await task


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    timeout_s: float,
    what: str = "condition",
    *,
    fail: bool = True,
) -> float:
    """Poll ``predicate`` until true; returns the seconds it took.

    After ``timeout_s`` the test fails, or with ``fail=False`` the caller's own assertions
    (which say more) take over.
    """
    started = time.monotonic()
    while not await predicate():
        if time.monotonic() - started > timeout_s:
            if fail:
                pytest.fail(f"{what} not reached within {timeout_s:.0f} s")
            break
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def register(db_url: str) -> None:
    """Register the stations the streams use."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, STATIONS)


async def stored_keys(db_url: str) -> list[Key]:
    """Every stored reading as (station, quantity, time), duplicates kept."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT s.station_id, s.quantity, r.time FROM readings r "
            "JOIN sensors s USING (sensor_id)"
        )
        return [(str(a), str(b), t) for a, b, t in await cur.fetchall()]


async def scalar(db_url: str, query: str, params: Sequence[object] = ()) -> int:
    """One integer from the database."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def stored_all(db_url: str, expected: int) -> Callable[[], Awaitable[bool]]:
    """A predicate: the readings table holds ``expected`` rows."""

    async def check() -> bool:
        return await scalar(db_url, "SELECT count(*) FROM readings") >= expected

    return check


async def assert_exactly_once(db_url: str, stream: Stream) -> None:
    """The database holds exactly the published readings."""
    rows = await stored_keys(db_url)
    assert len(rows) == len(set(rows)), "a reading is stored twice"
    missing = stream.keys - set(rows)
    extra = set(rows) - stream.keys
    assert not missing, f"{len(missing)} readings missing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} readings never published, e.g. {sorted(extra)[:3]}"


def assert_balanced(counts: Mapping[str, object], distinct: int) -> None:
    """The accounting identity holds, nothing is pending and nothing was stored twice."""
    c = {k: int(v) for k, v in counts.items() if isinstance(v, int | float)}
    assert c["pending_records"] == 0
    assert c["received_records"] == c["stored"] + c["duplicates"] + c["quarantined"], c
    assert c["quarantined"] == 0, c
    assert c["stored"] <= distinct


# -- broker restart ------------------------------------------------------------------------------


async def _past(publisher: Publisher, count: int) -> bool:
    return publisher.acked >= count


async def test_broker_restart_mid_stream(
    private_broker: Broker, db_url: str, topic_root: str
) -> None:
    await register(db_url)
    stream = station_stream(topic_root, 3000)
    publisher = Publisher("127.0.0.1", private_broker.port, stream.messages, rate_per_s=1000,
                          login=private_broker.login("pub"))  # fmt: skip
    settings = settings_for(db_url, private_broker, topic_root, receive_maximum=300)
    assert private_broker.embedded is not None
    async with running(settings) as ingest:
        async with publishing(publisher):
            await wait_until(lambda: _past(publisher, 1000), 30, "1000 messages published")
            await asyncio.to_thread(private_broker.embedded.stop)
            await asyncio.to_thread(private_broker.embedded.start)
        # Mosquitto 2.0 does not restore a persistent session's $share subscription from
        # its persistence file: whatever is published between its restart and the
        # ingestor's resubscription has no subscriber and is dropped (see the issue report).
        await wait_until(stored_all(db_url, len(stream.keys)), 30, fail=False)
        await assert_exactly_once(db_url, stream)
        await wait_until(lambda: _settled(ingest.service), 30, "nothing pending")
        ingest.assert_alive()
        assert ingest.service.consumer.stats.connects >= 2, "the ingestor never reconnected"
    await assert_exactly_once(db_url, stream)
    assert_balanced(ingest.service.stats(), len(stream.keys))
    assert ingest.service.counts["stored"] == len(stream.keys)


async def _settled(service: IngestService) -> bool:
    c = service.counts
    return c["pending_records"] == 0 and service.consumer.buffered == 0
