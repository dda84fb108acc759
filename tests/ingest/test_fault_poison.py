"""Poison messages: input that once stopped or wedged the ingestor, kept as regression tests.

The fuzzing in ``test_fuzz.py`` found them. Two fast property tests check the validator (the
loop boundary) without any service: it must never raise, and nothing it hands the database
may contain U+0000, which PostgreSQL text cannot hold (the whole batch would fail, and be
retried, for ever). The service tests publish each poison followed by a good message: the
poison must be quarantined and the good message stored.
"""

import asyncio
import time
from datetime import UTC, datetime

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import Quantity, Registry, encode_telemetry
from stream.consumer import RawMessage
from stream.validate import Validator
from tests.fixtures.mqtt import Broker
from tests.ingest.test_faults import Publisher, running
from tests.ingest.test_fuzz import (
    AIR,
    REGISTERED,
    Case,
    bad_senml,
    fuzz_settings,
    hostile,
    malformed,
    register_fuzz_stations,
    status,
    topic_for,
)

# -- the validator alone (the loop boundary) ---------------------------------------------------

ROOT = "hanoi/v1"


def _registry() -> Registry:
    keys: dict[tuple[str, Quantity], int] = {
        (s.station_id, sensor.quantity): i
        for i, (s, sensor) in enumerate((s, x) for s in REGISTERED for x in s.sensors)
    }
    return Registry.of(REGISTERED, keys)


def _raw(case: Case, now: datetime) -> RawMessage:
    return RawMessage(case.topic, case.payload, 1, 1, now, 1)


_NOW = datetime.now(UTC)
_ANY_CASE = st.one_of(
    malformed(ROOT, _NOW), hostile(ROOT, _NOW), bad_senml(ROOT, _NOW), status(ROOT)
)
_QUICK = settings(max_examples=300, derandomize=True, database=None, deadline=None)


@_QUICK
@given(_ANY_CASE)
def test_validator_never_raises(case: Case) -> None:
    outcome = Validator(_registry(), root=ROOT).check(_raw(case, _NOW))
    assert outcome.records >= 0


@_QUICK
@given(st.one_of(status(ROOT), hostile(ROOT, _NOW)))
def test_validator_hands_the_database_no_nul_characters(case: Case) -> None:
    # PostgreSQL text cannot hold U+0000: such a string fails the whole batch, for ever.
    try:
        outcome = Validator(_registry(), root=ROOT).check(_raw(case, _NOW))
    except UnicodeDecodeError:
        return  # reported by test_validator_never_raises
    texts = [t for q in outcome.quarantined for t in (q.reason, q.detail, q.station_id, q.quantity)]
    if outcome.status is not None:
        texts.append(outcome.status.reason)
    assert not [t for t in texts if t is not None and "\x00" in t], outcome


# -- poison messages the fuzzing found -------------------------------------------------------

POISON = {
    # msgspec raises UnicodeDecodeError (not DecodeError) for bad UTF-8 inside a string
    "bad_utf8_in_a_string": ("telemetry", b'{"station":"\xff","time":"2026-01-01T00:00:00Z",'
                             b'"readings":[]}'),
    "bad_utf8_in_a_status": ("status", b'{"state":"offline","reason":"\xc3\x28"}'),
    # a refused reading's raw name goes to a text column, which cannot hold U+0000
    "nul_in_a_senml_name": ("telemetry", b'[{"n":"urn:dev:hanoi:aq-fault-00:pm\\u000025",'
                            b'"u":"ug/m3","v":1,"bt":1.7e9}]'),
    "nul_in_a_status_reason": ("status", b'{"state":"offline","reason":"a\\u0000b"}'),
}  # fmt: skip


@pytest.mark.db
@pytest.mark.mqtt
@pytest.mark.anyio
@pytest.mark.parametrize("poison", sorted(POISON))
async def test_a_poison_message_is_quarantined_and_the_stream_goes_on(
    poison: str, db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    await register_fuzz_stations(db_url)
    kind, payload = POISON[poison]
    station = AIR[0].station_id
    after = encode_telemetry(station, datetime.now(UTC), [(Quantity.PM25, 12.0)])
    messages = [(topic_for(topic_root, station, kind=kind), payload),
                (topic_for(topic_root, station), after)]  # fmt: skip
    async with running(fuzz_settings(db_url, mqtt_broker, topic_root)) as ingest:
        await asyncio.to_thread(
            Publisher(
                mqtt_broker.host, mqtt_broker.port, messages, login=mqtt_broker.login("pub")
            ).run,
            30,
        )
        deadline = time.monotonic() + 15
        while ingest.service.counts["stored"] < 1 and time.monotonic() < deadline:
            ingest.assert_alive()
            await asyncio.sleep(0.1)
        ingest.assert_alive()
        stats = ingest.service.stats()
        assert stats["stored"] == 1, f"the message after the poison was not stored: {stats}"
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM quarantine WHERE payload = %s", (payload,))
        row = await cur.fetchone()
    assert row is not None
    assert row[0] >= 1 or kind == "status"
