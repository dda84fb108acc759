"""What refused and status messages leave in a real PostgreSQL: bounded, once, in order.

- a station's current state follows the order in which accepted statuses *arrived*: a
  device's clock (forged or broken) cannot pin it, a redelivered status stores nothing new;
- the quarantine keeps a prefix of each refused message with its full size and SHA-256, one
  row per distinct message however often it comes, and beyond a publisher's rate only
  counts (exactly) — so a flood of refusals cannot grow it without bound; old rows go.
"""

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from contract import Quantity, encode_status, encode_telemetry
from db import (
    Conn,
    StrategyName,
    load_registry,
    purge_quarantine,
    register_stations,
    strategy_for,
)
from ingest.writer import Writer, configure_connection
from stream.batcher import Batch
from stream.consumer import RawMessage
from stream.quarantine import QuarantinePolicy
from stream.sampler import QuarantineSampler
from stream.validate import Outcome, Validator
from tests.fixtures.readings import AIR, TEST_STATIONS

pytestmark = [pytest.mark.db, pytest.mark.anyio]

STATUS = f"hanoi/v1/air/{AIR.station_id}/status"
TELEMETRY = f"hanoi/v1/air/{AIR.station_id}/telemetry"


@pytest.fixture
async def writing(
    db_url: str, storage_strategy: StrategyName
) -> AsyncIterator[tuple[Writer, Validator, str]]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, TEST_STATIONS)
        registry = await load_registry(conn)
    pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
        db_url, min_size=1, max_size=2, configure=configure_connection, open=False
    )
    async with pool:
        writer = Writer(
            pool, strategy_for(storage_strategy), QuarantinePolicy(payload_prefix_bytes=1024)
        )
        validator = Validator(registry, sampler=QuarantineSampler(rate_per_min=60.0, burst=10))
        yield writer, validator, db_url


def _message(topic: str, payload: bytes, received_at: datetime) -> RawMessage:
    return RawMessage(topic, payload, 1, 1, received_at, 1)


async def _write(writer: Writer, outcomes: list[Outcome]) -> None:
    await writer.write(Batch(outcomes, sum(len(o.rows) for o in outcomes)))


async def _rows(db_url: str, sql: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        return list(await (await conn.execute(sql)).fetchall())


async def test_arrival_decides_the_state_not_the_devices_clock(
    writing: tuple[Writer, Validator, str],
) -> None:
    writer, validator, db_url = writing
    now = datetime.now(UTC)
    # a clock four minutes ahead (inside the accepted window) says "offline" first ...
    ahead = encode_status(False, now + timedelta(minutes=4), "clock ahead")
    await _write(writer, [validator.check(_message(STATUS, ahead, now))])
    # ... then the device, its clock fixed, says "online": that is the state now
    online = encode_status(True, now + timedelta(seconds=1))
    await _write(writer, [validator.check(_message(STATUS, online, now + timedelta(seconds=2)))])
    state = await _rows(db_url, f"SELECT state, since, reported_at FROM station_state "
                                f"WHERE station_id = '{AIR.station_id}'")  # fmt: skip
    assert state == [("online", now + timedelta(seconds=2), now + timedelta(seconds=1))]
    # a status from far ahead never gets in at all
    forged = b'{"state":"offline","time":"9999-12-31T23:59:59Z"}'
    refused = validator.check(_message(STATUS, forged, now + timedelta(seconds=3)))
    assert [q.reason for q in refused.quarantined] == ["future_time"]
    # redelivered, the same statuses store nothing new
    before = await _rows(db_url, "SELECT count(*) FROM sensor_status")
    later = now + timedelta(seconds=9)
    await _write(writer, [validator.check(_message(STATUS, ahead, later)),
                          validator.check(_message(STATUS, online, later))])  # fmt: skip
    assert await _rows(db_url, "SELECT count(*) FROM sensor_status") == before


async def test_a_flood_of_refusals_is_counted_exactly_and_kept_bounded(
    writing: tuple[Writer, Validator, str],
) -> None:
    writer, validator, db_url = writing
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    big = b"{" + b"x" * 200_000  # malformed, and far larger than the prefix kept
    outcomes = []
    for i in range(1000):  # 1000 distinct bad messages within 10 s from one publisher
        payload = big + str(i).encode() if i % 2 else b"not json %d" % i
        at = start + timedelta(milliseconds=10 * i)
        outcomes.append(validator.check(_message(TELEMETRY, payload, at)))
    for i in range(0, 1000, 100):
        await _write(writer, outcomes[i : i + 100])
    rows = await _rows(db_url, "SELECT payload, payload_size, payload_sha256, topic_size "
                               "FROM quarantine")  # fmt: skip
    assert 10 <= len(rows) <= 10 + 10 + 2  # the burst, a token a second, the first per reason
    sent = {hashlib.sha256(o.message.payload).digest(): o.message.payload for o in outcomes}
    for kept, size, digest, topic_size in rows:
        assert isinstance(kept, bytes)
        assert isinstance(digest, bytes)
        full = sent[digest]  # the digest names the whole message
        assert kept == full[:1024]
        assert size == len(full)
        assert topic_size == len(TELEMETRY)
    (messages, readings, sampled), = await _rows(
        db_url, "SELECT sum(messages), sum(readings), sum(sampled) FROM quarantine_counts "
                f"WHERE publisher = '{AIR.station_id}'")  # fmt: skip
    assert (messages, readings, sampled) == (1000, 1000, len(rows))


async def test_the_same_refused_message_is_one_row_however_often_it_comes(
    writing: tuple[Writer, Validator, str],
) -> None:
    writer, validator, db_url = writing
    now = datetime.now(UTC)
    stale = encode_telemetry(AIR.station_id, now - timedelta(days=900), [(Quantity.PM25, 3.0)])
    for k in range(3):  # a redelivery, a retained copy heard again, a device repeating itself
        await _write(writer, [validator.check(_message(TELEMETRY, b"{oops",
                                                       now + timedelta(seconds=k))),
                              validator.check(_message(TELEMETRY, stale, now))])  # fmt: skip
    rows = await _rows(db_url, "SELECT reason, copies FROM quarantine ORDER BY reason")
    assert rows == [("malformed_json", 3), ("stale_time", 3)]
    (count,) = await _rows(db_url, "SELECT sum(messages) FROM quarantine_counts")
    assert count == (6,)


async def test_quarantine_rows_and_counts_past_retention_go(
    writing: tuple[Writer, Validator, str],
) -> None:
    writer, validator, db_url = writing
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=40)
    await _write(writer, [validator.check(_message(TELEMETRY, b"{old", long_ago)),
                          validator.check(_message(TELEMETRY, b"{new", now))])  # fmt: skip
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        dropped = await purge_quarantine(conn, 30.0)
        await conn.commit()
    assert dropped == 1
    assert await _rows(db_url, "SELECT count(*) FROM quarantine") == [(1,)]
    assert await _rows(db_url, "SELECT count(*) FROM quarantine_counts") == [(1,)]
