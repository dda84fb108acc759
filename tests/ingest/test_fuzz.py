"""Generated payloads, valid, malformed and hostile, thrown at a running ingestor.

A Hypothesis corpus (deterministic seed) of at least 10,000 messages is built first and then
published in bulk. Every message carries an expectation:

- ``stored``: a valid station sample or gateway pack; every reading must be in the database;
- ``refused``: broken as a whole or reading by reading; its payload must be in the quarantine
  table (and the quarantine's reading counts must add up to the ``quarantined`` counter);
- ``status``: a device status message (no readings, no quarantine);
- ``any``: hostile input whose fate depends on details (duplicate keys, garbage that may
  happen to parse); it must only be accounted for, and nothing it did not carry is stored.

The ingestor must never stop, must ack every message, and its counters must balance, both
in memory and against the tables. The strategies are shared with ``test_fault_poison.py``
(property tests of the validator alone, and the poison messages this fuzzing found).
"""

import asyncio
import dataclasses
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec
import paho.mqtt.client as mqtt
import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from contract import (
    MAX_PAYLOAD_BYTES,
    QUANTITIES,
    SENML_PREFIX,
    PayloadError,
    Quantity,
    Station,
    Topic,
    decode_telemetry,
    encode_senml,
    encode_status,
    encode_telemetry,
)
from db import register_stations
from ingest.settings import IngestSettings
from tests.fixtures.mqtt import Broker
from tests.fixtures.readings import FLOOD
from tests.ingest.test_faults import STATIONS, Publisher, Running, running, settings_for

MESSAGES = 10_000
Expect = Literal["stored", "refused", "broker", "status", "any"]
"""``broker``: refused by the broker itself (over its size limit); ingest never sees it."""
Key = tuple[str, str, datetime]
GATEWAY = "gw-fuzz"
AIR = tuple(dataclasses.replace(s, attributes={"gateway": GATEWAY}) for s in STATIONS[:4])
REGISTERED: tuple[Station, ...] = (*AIR, FLOOD)


@dataclass(frozen=True, slots=True)
class Case:
    """One generated message and what must become of it."""

    kind: str
    topic: str
    payload: bytes
    expect: Expect
    keys: frozenset[Key] = frozenset()


@dataclass(frozen=True, slots=True)
class Sample:
    """A valid station sample, the material most mutations start from."""

    station: Station
    at: datetime
    values: list[tuple[Quantity, float]]
    topic: str
    good: bytes


# -- strategies (built once: constructing strategies per draw costs more than drawing) -------

_STATION = st.sampled_from(REGISTERED)
_SENSORS = {
    s.station_id: st.lists(st.sampled_from(s.sensors), min_size=1, unique=True) for s in REGISTERED
}
_VALUE = {
    q: st.floats(spec.physical_min, spec.physical_max, allow_nan=False)
    for q, spec in QUANTITIES.items()
}
_AGE_US = st.integers(1_000_000, 3 * 86400 * 10**6)
_SEQ = st.none() | st.integers(0, 2**31)
_PACK = st.lists(
    st.tuples(st.sampled_from(AIR), st.sampled_from(STATIONS[0].sensors), st.integers(1, 259200)),
    min_size=1, max_size=12, unique_by=lambda t: (t[0].station_id, t[1].quantity, t[2]),
)  # fmt: skip
_WRONG: st.SearchStrategy[object] = st.sampled_from([1, 1.5, True, None, {}, [[1]], "x"])
# Text with control characters well represented (U+0000 included): they end up in text columns.
_TEXT = st.text(st.sampled_from('\x00\x01\n"\\:ạ€😀'), max_size=12)


def topic_for(root: str, station: str, domain: str = "air", kind: str = "telemetry") -> str:
    return f"{root}/{domain}/{station}/{kind}"


@st.composite
def sample(draw: st.DrawFn, root: str, now: datetime) -> Sample:
    """A valid station sample: some of its sensors, a time in the last three days."""
    station = draw(_STATION)
    at = now - timedelta(microseconds=draw(_AGE_US))
    values = [(s.quantity, draw(_VALUE[s.quantity])) for s in draw(_SENSORS[station.station_id])]
    topic = topic_for(root, station.station_id, station.domain.value)
    return Sample(station, at, values, topic, encode_telemetry(station.station_id, at, values))


def _keys(topic: str, payload: bytes, root: str, now: datetime) -> frozenset[Key]:
    decoded = decode_telemetry(Topic.parse(topic, root), payload, now)
    assert not decoded.rejections, decoded.rejections
    return frozenset((r.station_id, r.quantity.value, r.measured_at) for r in decoded.readings)


@st.composite
def valid_station(draw: st.DrawFn, root: str, now: datetime) -> Case:
    s = draw(sample(root, now))
    payload = encode_telemetry(s.station.station_id, s.at, s.values, seq=draw(_SEQ))
    return Case("valid_station", s.topic, payload, "stored", _keys(s.topic, payload, root, now))


@st.composite
def valid_senml(draw: st.DrawFn, root: str, now: datetime) -> Case:
    """A gateway pack of air readings (distinct keys), published on the gateway's topic."""
    readings = [
        (s.station_id, q.quantity, draw(_VALUE[q.quantity]), now - timedelta(seconds=ago))
        for s, q, ago in draw(_PACK)
    ]
    topic = topic_for(root, GATEWAY)  # the gateway the AIR stations are registered to
    payload = encode_senml(readings)
    return Case("valid_senml", topic, payload, "stored", _keys(topic, payload, root, now))


@st.composite
def status(draw: st.DrawFn, root: str) -> Case:
    """A status message; for an unregistered station it is quarantined."""
    registered = draw(st.booleans())
    chosen = draw(_STATION)
    station = chosen.station_id if registered else "aq-nowhere-1"
    # held to the rules telemetry is: the station's own domain (another is refused)
    domain = draw(st.sampled_from([chosen.domain.value] * 5 + ["water"]))
    reason = draw(st.none() | _TEXT)
    payload = draw(st.sampled_from([b"online", b"offline", encode_status(False, reason=reason)]))
    topic = topic_for(root, station, domain, kind="status")
    accepted = registered and domain == chosen.domain.value
    return Case("status", topic, payload, "status" if accepted else "refused")


def _json(body: object) -> bytes:
    return msgspec.json.encode(body)


def _edit(s: Sample, field: str, value: object) -> bytes:
    body = msgspec.json.decode(s.good)
    body[field] = value
    return _json(body)


Mutation = Callable[[st.DrawFn, Sample, str, datetime], tuple[str, bytes]]


def _replace_value(s: Sample, replacement: bytes) -> bytes:
    """Put ``replacement`` where the first value was (its number follows as an extra field)."""
    return s.good.replace(b'"value":', b'"value":' + replacement + b',"v":', 1)


def _truncated(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    return s.topic, s.good[: d(st.integers(0, len(s.good) - 1))]


def _wrong_type(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    return s.topic, _edit(s, d(st.sampled_from(["station", "time", "readings"])), d(_WRONG))


def _value_as_text(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    return s.topic, _replace_value(s, d(st.sampled_from([b'"12,5"', b'"NaN"', b'""'])))


def _nan_token(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    return s.topic, _replace_value(s, d(st.sampled_from([b"NaN", b"Infinity", b"-Infinity"])))


def _huge_number(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    return s.topic, _replace_value(s, b"9" * d(st.integers(310, 2000)))


def _deep_nesting(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    depth = d(st.integers(100, 50_000))
    return s.topic, b'{"station":' + b"[" * depth + b"]" * depth + b"}"


def _not_utf8(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    junk = d(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]))
    return s.topic, s.good.replace(b'"station":"', b'"station":"' + junk, 1)


def _unknown_field(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    return s.topic, _edit(s, "x-" + d(st.text(max_size=8)), 1)


def _station_mismatch(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    other = d(_STATION.filter(lambda o: o is not s.station))
    return s.topic, encode_telemetry(other.station_id, s.at, [])


def _future_time(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    return s.topic, encode_telemetry(s.station.station_id, now + timedelta(hours=2), s.values)


def _stale_time(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    return s.topic, encode_telemetry(s.station.station_id, now - timedelta(days=500), s.values)


def _naive_time(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    return s.topic, _edit(s, "time", s.at.replace(tzinfo=None).isoformat())


def _unregistered(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    return topic_for(root, "aq-not-registered"), encode_telemetry(
        "aq-not-registered", s.at, s.values
    )


def _wrong_domain(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    return topic_for(root, s.station.station_id, "water"), s.good


def _bad_topic(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    level = d(st.sampled_from(["AQ-UPPER", "trạm-hà-nội", "x" * 80, "-lead"]))
    return topic_for(root, level, d(st.sampled_from(["air", "bogus"]))), s.good


def _not_its_gateway(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    # a well-formed pack for registered stations, from a gateway they are not registered to
    pack = encode_senml([(AIR[0].station_id, Quantity.PM25, 12.0, s.at)])
    return topic_for(root, d(st.sampled_from(["gw-other", AIR[1].station_id]))), pack


def _relative_time(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    record = {"n": f"{SENML_PREFIX}{AIR[0].station_id}:pm25", "u": "ug/m3", "v": 1.0}
    t = d(st.none() | st.floats(-(2.0**28) + 1, 2.0**28 - 1, allow_nan=False))
    return topic_for(root, GATEWAY), _json([record if t is None else {**record, "t": t}])


def _time_overflow(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    edge = d(
        st.sampled_from(
            [
                "9999-12-31T23:59:59-01:00",
                "0001-01-01T00:00:00+01:00",
                "9999-12-31T23:59:59.999999-23:59",
                "0001-01-01T00:00:00+23:59",
            ]
        )
    )
    return s.topic, _edit(s, "time", edge)


def _oversized(d: st.DrawFn, s: Sample, root: str, now: datetime) -> tuple[str, bytes]:
    pad = b"x" * (MAX_PAYLOAD_BYTES + d(st.integers(0, 999)))
    return s.topic, s.good[:-1] + b',"pad":"' + pad + b'"}'


# Each mutation breaks one rule of the contract; the message must end up in quarantine.
MUTATIONS: dict[str, Mutation] = {
    "truncated": _truncated, "wrong_type": _wrong_type, "value_as_text": _value_as_text,
    "nan_token": _nan_token, "huge_number": _huge_number, "deep_nesting": _deep_nesting,
    "not_utf8": _not_utf8, "unknown_field": _unknown_field, "station_mismatch": _station_mismatch,
    "future_time": _future_time, "stale_time": _stale_time, "naive_time": _naive_time,
    "unregistered_station": _unregistered, "wrong_domain": _wrong_domain,
    "bad_topic": _bad_topic, "oversized": _oversized, "not_its_gateway": _not_its_gateway,
    "relative_time": _relative_time, "time_overflow": _time_overflow,
}  # fmt: skip
# oversized payloads are a quarter of a megabyte each: keep them rare
_FLAVOUR = st.sampled_from([f for f in MUTATIONS if f != "oversized"] * 8 + ["oversized"])


@st.composite
def malformed(draw: st.DrawFn, root: str, now: datetime) -> Case:
    """A message the contract refuses as a whole (or reading by reading)."""
    flavour = draw(_FLAVOUR)
    topic, payload = MUTATIONS[flavour](draw, draw(sample(root, now)), root, now)
    # over the broker's size limit (the contract's): the broker refuses it, ingest never sees it
    expect: Expect = "broker" if len(payload) > MAX_PAYLOAD_BYTES else "refused"
    return Case(f"malformed_{flavour}", topic, payload, expect)


def _bad_records(now: datetime) -> list[dict[str, object]]:
    good = {
        "n": f"{SENML_PREFIX}{AIR[0].station_id}:pm25", "u": "ug/m3", "v": 1.0,
        "bt": (now - timedelta(minutes=5)).timestamp(),
    }  # fmt: skip
    return [
        {**good, "n": "pm25"}, {**good, "vs": "high"}, {**good, "bver": 99},
        {k: v for k, v in good.items() if k != "u"}, {**good, "bt": 1e300},
        {k: v for k, v in good.items() if k != "v"}, {**good, "n": f"{SENML_PREFIX}a:b:c"},
        {**good, "u": "furlong"}, {**good, "v": -5.0}, {**good, "bt": "yesterday"},
    ]  # fmt: skip


@st.composite
def bad_senml(draw: st.DrawFn, root: str, now: datetime) -> Case:
    """A gateway pack that breaks RFC 8428 or our naming."""
    record = draw(st.sampled_from(_bad_records(now)))
    return Case("bad_senml", topic_for(root, "gw-1"), _json([record]), "refused")


@st.composite
def hostile(draw: st.DrawFn, root: str, now: datetime) -> Case:
    """Garbage and near-misses whose fate is not fixed in advance: only accounted for."""
    s = draw(sample(root, now))
    flavour = draw(st.sampled_from(["bytes", "text", "dup_keys", "senml_names", "dup_reading"]))
    if flavour == "bytes":
        payload = draw(st.binary(max_size=300))
    elif flavour == "text":
        payload = draw(st.text(max_size=200)).encode()
    elif flavour == "dup_keys":  # the last "station" wins in msgspec
        payload = s.good.replace(b"{", b'{"station":"aq-other-1",', 1)
    elif flavour == "dup_reading":
        payload = encode_telemetry(s.station.station_id, s.at, [*s.values, s.values[0]])
    else:  # SenML names of arbitrary text, control characters included
        name = f"{SENML_PREFIX}{AIR[0].station_id}:"
        pack = [
            {"n": name + n, "u": "ug/m3", "v": 1, "bt": s.at.timestamp()}
            for n in draw(st.lists(_TEXT, min_size=1, max_size=5))
        ]
        payload = _json(pack)
    return Case(f"hostile_{flavour}", s.topic, payload, "any")


def cases(root: str, now: datetime) -> st.SearchStrategy[Case]:
    """The mix: about 40 % valid, 40 % refused, the rest hostile and status."""
    return st.one_of(
        valid_station(root, now), valid_senml(root, now), malformed(root, now),
        malformed(root, now), bad_senml(root, now), hostile(root, now), status(root),
    )  # fmt: skip


def build_corpus(root: str, now: datetime, size: int) -> list[Case]:
    """At least ``size`` cases from a fixed seed."""
    corpus: list[Case] = []

    @settings(
        max_examples=size // 50 + 10, derandomize=True, database=None, deadline=None,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(st.lists(cases(root, now), min_size=50, max_size=50))
    def collect(batch: list[Case]) -> None:
        corpus.extend(batch)

    collect()
    # The size limit's edges, whatever the draw: the broker refuses one byte over it, ingest
    # refuses what it lets through unless it is a message.
    topic = topic_for(root, AIR[0].station_id)
    corpus += [
        Case("edge_over_limit", topic, b"{" + b" " * MAX_PAYLOAD_BYTES, "broker"),
        Case("edge_at_limit", topic, b"[" + b" " * (MAX_PAYLOAD_BYTES - 1), "refused"),
    ]
    return corpus


# -- a running ingestor ----------------------------------------------------------------------


async def register_fuzz_stations(db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, REGISTERED)


def fuzz_settings(db_url: str, broker: Broker, root: str) -> IngestSettings:
    # every refused message keeps its row here (the sampling has its own test)
    return settings_for(
        db_url, broker, root, instance="fz-" + root[2:14], quarantine_rate_per_min=1e9,
        quarantine_burst=10**9,
    )  # fmt: skip


@pytest.mark.db
@pytest.mark.mqtt
@pytest.mark.slow
@pytest.mark.anyio
async def test_ten_thousand_generated_payloads(
    db_url: str, mqtt_broker: Broker, topic_root: str
) -> None:
    await register_fuzz_stations(db_url)
    now = datetime.now(UTC)
    corpus = build_corpus(topic_root, now, MESSAGES)
    assert len(corpus) >= MESSAGES
    assert {c.expect for c in corpus} == {"stored", "refused", "broker", "status", "any"}
    messages = [(c.topic, c.payload) for c in corpus]
    at_broker = sum(c.expect == "broker" for c in corpus)
    # MQTT 3.1.1: Mosquitto 2.0.11 answers an MQTT 5 publisher's oversized message with a
    # PUBACK reason code (0x95) that MQTT 5 does not allow there, and paho drops the
    # connection on it; a 3.1.1 publisher just gets its PUBACK (and the message is dropped).
    publisher = Publisher(
        mqtt_broker.host, mqtt_broker.port, messages, window=500, login=mqtt_broker.login("pub"),
        protocol=mqtt.MQTTv311,
    )  # fmt: skip
    async with running(fuzz_settings(db_url, mqtt_broker, topic_root)) as ingest:
        await asyncio.to_thread(publisher.run, 120)
        await _drain(ingest, len(corpus) - at_broker, timeout_s=120)
    counts = ingest.service.stats()
    assert counts["received_messages"] == len(corpus) - at_broker
    assert counts["acked_messages"] == len(corpus) - at_broker
    assert counts["pending_records"] == 0
    parts = int(counts["stored"]) + int(counts["duplicates"]) + int(counts["quarantined"])
    assert counts["received_records"] == parts
    assert counts["status_messages"] == sum(c.expect == "status" for c in corpus)
    await _check_tables(db_url, corpus, counts, topic_root, now)


async def _drain(ingest: Running, messages: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while ingest.service.pipeline.counts["acked_messages"] < messages:
        ingest.assert_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"not every message was handled: {ingest.service.stats()}")
        await asyncio.sleep(0.2)


_ROWS = """SELECT s.station_id, s.quantity, r.time, r.value
           FROM readings r JOIN sensors s USING (sensor_id)"""


async def _check_tables(
    db_url: str, corpus: list[Case], counts: dict[str, float | int | str], root: str, now: datetime
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        rows = await (await conn.execute(_ROWS)).fetchall()
        cur = await conn.execute(
            "SELECT topic, payload_sha256, readings, copies, payload_size, length(payload) "
            "FROM quarantine"
        )
        quarantine = await cur.fetchall()
        cur = await conn.execute("SELECT sum(readings), sum(messages) FROM quarantine_counts")
        tally = await cur.fetchone()
    stored = {(str(s), str(q), t) for s, q, t, _ in rows}
    assert len(rows) == counts["stored"]
    assert all(math.isfinite(float(v)) for *_, v in rows)
    # one row per distinct refused message, its repeats counted; every refusal in the tally
    assert sum(int(n) * int(c) for _, _, n, c, _, _ in quarantine) == counts["quarantined"]
    assert tally is not None
    assert int(tally[0]) == counts["quarantined"]
    # bounded: a prefix of each payload, its full size and digest beside it
    assert all(kept <= 8192 and kept <= size for *_, size, kept in quarantine)
    refused = {(str(t), bytes(h)) for t, h, *_ in quarantine}
    missing = [c for c in corpus if c.expect == "stored" and not c.keys <= stored]
    assert not missing, f"{len(missing)} valid messages not stored, e.g. {missing[:2]}"
    lost = [
        c
        for c in corpus
        if c.expect == "refused"
        and (c.topic[:256], hashlib.sha256(c.payload).digest()) not in refused
    ]
    assert not lost, f"{len(lost)} refused messages not quarantined, e.g. {lost[:2]}"
    possible = set().union(*(c.keys for c in corpus))
    possible |= {k for c in corpus if c.expect == "any" for k in _decodable(c, root, now)}
    invented = stored - possible
    assert not invented, f"{len(invented)} readings stored that no message carried"


def _decodable(case: Case, root: str, now: datetime) -> set[Key]:
    """Whatever readings a hostile message could yield (an upper bound for the check)."""
    try:
        decoded = decode_telemetry(Topic.parse(case.topic, root), case.payload, now)
    except (PayloadError, ValueError):
        return set()
    return {(r.station_id, r.quantity.value, r.measured_at) for r in decoded.readings}
