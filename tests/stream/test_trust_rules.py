"""Validation at the trust boundary: status held to telemetry's rules, gateways, retained
telemetry, and nothing a message does makes the validator raise."""

from datetime import UTC, datetime, timedelta

import pytest

from contract import (
    Domain,
    Quantity,
    Registry,
    Sensor,
    Station,
    StationId,
    encode_senml,
    encode_status,
    encode_telemetry,
)
from stream.consumer import RawMessage
from stream.sampler import QuarantineSampler
from stream.validate import Validator

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
PM = (Sensor(Quantity.PM25, 60.0),)
STATIONS = (
    Station(StationId("aq-a"), Domain.AIR, "A", "x", 21.0, 105.8, "urban", PM, {"gateway": "gw-1"}),
    Station(StationId("aq-b"), Domain.AIR, "B", "x", 21.0, 105.8, "urban", PM, {"gateway": "gw-1"}),
    Station(StationId("aq-c"), Domain.AIR, "C", "x", 21.0, 105.8, "urban", PM, {"gateway": "gw-2"}),
    Station(StationId("aq-d"), Domain.AIR, "D", "x", 21.0, 105.8, "urban", PM),
)  # fmt: skip
REGISTRY = Registry.of(STATIONS, {(s.station_id, Quantity.PM25): i for i, s in enumerate(STATIONS)})


def check(topic: str, payload: bytes, *, retain: bool = False, at: datetime = NOW) -> object:
    raw = RawMessage(f"hanoi/v1/{topic}", payload, 1, 1, at, 1, None, retain)
    return Validator(REGISTRY).check(raw)


def _reasons(outcome: object) -> list[str]:
    return sorted(q.reason for q in outcome.quarantined)  # type: ignore[attr-defined]


def _stations(outcome: object) -> list[str]:
    return sorted(str(r.station_id) for r in outcome.readings)  # type: ignore[attr-defined]


def pack(*stations: str) -> bytes:
    return encode_senml([(s, Quantity.PM25, 10.0, NOW - timedelta(minutes=1)) for s in stations])


def test_a_pack_speaks_for_the_topics_station_or_its_gateways_stations() -> None:
    ok = check("air/gw-1/telemetry", pack("aq-a", "aq-b"))
    assert (_stations(ok), _reasons(ok)) == (["aq-a", "aq-b"], [])
    mixed = check("air/gw-1/telemetry", pack("aq-a", "aq-c", "aq-d"))
    assert _stations(mixed) == ["aq-a"]
    assert _reasons(mixed) == ["station_mismatch"]
    assert mixed.quarantined[0].readings == 2  # type: ignore[attr-defined]
    own = check("air/aq-d/telemetry", pack("aq-d"))
    assert (_stations(own), _reasons(own)) == (["aq-d"], [])
    # a station is nobody's gateway: its topic speaks for itself only
    assert _reasons(check("air/aq-a/telemetry", pack("aq-b"))) == ["station_mismatch"]


def test_retained_telemetry_is_an_old_message() -> None:
    body = encode_telemetry("aq-d", NOW - timedelta(minutes=1), [(Quantity.PM25, 3.0)])
    assert _reasons(check("air/aq-d/telemetry", body, retain=True)) == ["retained"]
    assert _reasons(check("air/aq-d/telemetry", body)) == []


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("air/aq-nowhere/status", b"online", "unknown_station"),
        ("water/aq-d/status", b"online", "domain_mismatch"),
        ("air/aq-d/status", b'{"state":"offline","station":"aq-a"}', "station_mismatch"),
        ("air/aq-d/status", b'{"state":"offline","time":"9999-12-31T23:59:59Z"}', "future_time"),
        ("air/aq-d/status", b'{"state":"offline","time":"9999-12-31T23:59:59-01:00"}',
         "time_out_of_range"),
        ("air/aq-d/status", b'{"state":"online","time":"0001-01-01T00:00:00+01:00"}',
         "time_out_of_range"),
        ("air/aq-d/status", b'{"state":"online","time":"2001-01-01T00:00:00Z"}', "stale_time"),
        ("air/aq-d/status", b'{"state":"online","time":"2026-11-23T04:10:00+00:00"}',
         "future_time"),
    ],
)  # fmt: skip
def test_status_is_held_to_the_rules_telemetry_is(topic: str, payload: bytes, reason: str) -> None:
    outcome = check(topic, payload)
    assert outcome.status is None  # type: ignore[attr-defined]
    assert _reasons(outcome) == [reason]


def test_a_good_status_is_taken_with_its_bounded_time() -> None:
    at = NOW - timedelta(minutes=2)
    outcome = check("air/aq-d/status", encode_status(False, at, "power"))
    assert outcome.status is not None  # type: ignore[attr-defined]
    assert outcome.status.at == at  # type: ignore[attr-defined]
    assert not outcome.quarantined  # type: ignore[attr-defined]
    will = check("air/aq-d/status", b"offline")
    assert will.status.at == NOW  # type: ignore[attr-defined]


class _Exploding(Validator):
    def _check(self, message: RawMessage) -> object:  # type: ignore[override]
        raise OverflowError("date value out of range")


def test_whatever_validation_raises_becomes_an_internal_error_entry() -> None:
    raw = RawMessage("hanoi/v1/air/aq-d/telemetry", b"{}", 1, 1, NOW, 1)
    outcome = _Exploding(REGISTRY).check(raw)
    (entry,) = outcome.quarantined
    assert entry.reason == "internal_error"
    assert entry.detail.startswith("OverflowError: ")
    assert entry.station_id == "aq-d"


def test_beyond_its_rate_a_publisher_is_counted_not_kept() -> None:
    sampler = QuarantineSampler(rate_per_min=60.0, burst=5)
    validator = Validator(REGISTRY, sampler=sampler)
    outcomes = [
        validator.check(RawMessage("hanoi/v1/air/aq-d/telemetry", b"{", i, 1,
                                   NOW + timedelta(milliseconds=10 * i), 1))
        for i in range(100)
    ]  # fmt: skip
    kept = [o for o in outcomes if o.sampled]
    assert len(kept) == 5  # the burst; one second later the next token
    assert all(o.quarantined for o in outcomes)  # all refused, all counted
    other = validator.check(RawMessage("hanoi/v1/air/aq-a/telemetry", b"{", 1, 1, NOW, 1))
    assert other.sampled  # another publisher has its own bucket
