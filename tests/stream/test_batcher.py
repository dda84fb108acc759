"""The batching policy with a fake clock, and validation against a registry."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from contract import Domain, Quantity, Registry, Sensor, Station, StationId
from stream.batcher import Batcher
from stream.consumer import RawMessage
from stream.validate import QUALITY_SUSPECT, Outcome, Validator
from tests.fixtures.readings import air_sample

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def outcome(rows: int) -> Outcome:
    raw = RawMessage("t", b"", 1, 1, NOW, 1)
    row = (NOW, 1, 1.0, 0, NOW)
    return Outcome(raw, rows=(row,) * rows)


def test_flushes_on_size() -> None:
    batcher = Batcher(max_readings=10, max_messages=100, max_age_s=1.0)
    assert not batcher.add(outcome(4), now=0.0)
    assert not batcher.add(outcome(4), now=0.1)
    assert batcher.add(outcome(4), now=0.2)
    batch = batcher.take()
    assert (len(batch), batch.readings) == (3, 12)
    assert len(batcher) == 0
    assert batcher.due_in(5.0) is None


def test_flushes_on_messages_and_age() -> None:
    batcher = Batcher(max_readings=1000, max_messages=2, max_age_s=0.5)
    batcher.add(outcome(0), now=10.0)  # a status message has no rows but counts
    due = batcher.due_in(10.2)
    assert due is not None
    assert abs(due - 0.3) < 1e-9
    assert batcher.due_in(11.0) == 0.0
    assert batcher.add(outcome(0), now=10.3)


@given(st.lists(st.integers(min_value=0, max_value=30), max_size=200))
def test_nothing_is_lost_between_batches(sizes: list[int]) -> None:
    batcher = Batcher(max_readings=50, max_messages=7, max_age_s=1.0)
    taken = []
    for i, n in enumerate(sizes):
        if batcher.add(outcome(n), now=float(i)):
            batch = batcher.take()
            assert batch.readings < 50 + 30
            assert len(batch) <= 7
            taken.append(batch)
    taken.append(batcher.take())
    assert sum(b.readings for b in taken) == sum(sizes)
    assert sum(len(b) for b in taken) == len(sizes)


REGISTRY = Registry.of(
    [Station(StationId("aq-test-hoan-kiem"), Domain.AIR, "HK", "Hoàn Kiếm", 21.0, 105.8,
             "traffic", (Sensor(Quantity.PM25, 60.0, 0.0, 500.0),))],
    {("aq-test-hoan-kiem", Quantity.PM25): 7},
)  # fmt: skip


def check(topic: str, payload: bytes) -> Outcome:
    validator = Validator(REGISTRY, max_future_s=60, max_age_s=86400)
    return validator.check(RawMessage(topic, payload, 1, 1, NOW, 1))


def test_validation_outcomes() -> None:
    topic = "hanoi/v1/air/aq-test-hoan-kiem/telemetry"
    ok = check(topic, air_sample(NOW, 20.0))
    assert [r[1:4] for r in ok.rows] == [(7, 20.0, 0)]
    assert [(q.reason, q.readings) for q in ok.quarantined] == [("unknown_sensor", 1)]  # no2
    assert ok.records == 2
    suspect = check(topic, air_sample(NOW, 700.0))
    assert suspect.rows[0][3] == QUALITY_SUSPECT
    future = check(topic, air_sample(NOW + timedelta(minutes=5), 20.0))
    assert {q.reason for q in future.quarantined} == {"future_time", "unknown_sensor"}
    old = check(topic, air_sample(NOW - timedelta(days=2), 20.0))
    assert "stale_time" in {q.reason for q in old.quarantined}
    wrong_domain = check("hanoi/v1/water/aq-test-hoan-kiem/telemetry", air_sample(NOW, 20.0))
    assert {q.reason for q in wrong_domain.quarantined} == {"domain_mismatch"}
    garbage = check(topic, b"\x00\x01")
    assert [(q.reason, q.readings, q.station_id) for q in garbage.quarantined] == [
        ("malformed_json", 1, "aq-test-hoan-kiem")
    ]
    status = check("hanoi/v1/air/aq-test-hoan-kiem/status", b"online")
    assert status.status is not None
    assert status.records == 0
    unknown = check("hanoi/v1/air/aq-nowhere/status", b"online")
    assert [q.reason for q in unknown.quarantined] == ["unknown_station"]
