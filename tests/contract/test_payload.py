"""The wire contract: topics, JSON and SenML payloads, every refusal with its reason."""

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import (
    MAX_PAYLOAD_BYTES,
    MAX_REASON_CHARS,
    QUANTITIES,
    Domain,
    PayloadError,
    Quantity,
    Sensor,
    Station,
    StationId,
    Topic,
    TruthEvent,
    decode_registry,
    decode_status,
    decode_telemetry,
    decode_truth,
    encode_registry,
    encode_senml,
    encode_status,
    encode_telemetry,
    encode_truth,
)

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
AIR = Topic.parse("hanoi/v1/air/aq-hoan-kiem/telemetry")

station_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}", fullmatch=True)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def samples(draw: st.DrawFn) -> tuple[str, datetime, list[tuple[Quantity, float]]]:
    station = draw(station_ids)
    quantities = draw(st.lists(st.sampled_from(list(Quantity)), min_size=1, max_size=8,
                               unique=True))  # fmt: skip
    values = []
    for q in quantities:
        spec = QUANTITIES[q]
        values.append((q, draw(st.floats(spec.physical_min, spec.physical_max))))
    return station, draw(moments), values


@settings(max_examples=300)
@given(samples())
def test_telemetry_round_trip(sample: tuple[str, datetime, list[tuple[Quantity, float]]]) -> None:
    station, at, values = sample
    topic = Topic(Domain.AIR, StationId(station), "telemetry")
    decoded = decode_telemetry(topic, encode_telemetry(station, at, values, seq=1), NOW)
    assert decoded.rejections == ()
    assert [(r.quantity, r.value) for r in decoded.readings] == values
    assert all(r.measured_at == at and r.received_at == NOW for r in decoded.readings)
    assert all(r.sensor_id == f"{station}.{r.quantity}" for r in decoded.readings)


@settings(max_examples=300)
@given(samples())
def test_senml_round_trip(sample: tuple[str, datetime, list[tuple[Quantity, float]]]) -> None:
    station, at, values = sample
    pack = encode_senml(
        (station, q, v, at + timedelta(seconds=i)) for i, (q, v) in enumerate(values)
    )
    decoded = decode_telemetry(AIR, pack, NOW)
    assert decoded.rejections == ()
    assert [(r.station_id, r.quantity) for r in decoded.readings] == [
        (station, q) for q, _ in values
    ]
    for reading, (_, value) in zip(decoded.readings, values, strict=True):
        assert math.isclose(reading.value, value, rel_tol=1e-12, abs_tol=1e-12)
    for i, reading in enumerate(decoded.readings):
        assert abs((reading.measured_at - (at + timedelta(seconds=i))).total_seconds()) < 1e-3


@given(st.text(max_size=80))
def test_topic_parse_never_raises_anything_but_payload_error(text: str) -> None:
    try:
        parsed: str = str(Topic.parse(text))
    except PayloadError as exc:
        parsed = exc.reason
    assert parsed in (text, "bad_topic")


@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_refused_with_a_reason(payload: bytes) -> None:
    outcome = "decoded"
    try:
        decode_telemetry(AIR, payload, NOW)
    except PayloadError as exc:
        outcome = exc.reason
    assert outcome in {"decoded", "malformed_json", "schema", "not_utf8", "station_mismatch",
                       "naive_time", "senml", "bad_unit", "oversized"}  # fmt: skip


def test_topic_round_trip_and_filters() -> None:
    topic = Topic.parse("t-1/v1/flood/fd-thai-ha/status", root="t-1/v1")
    assert (topic.domain, topic.station_id, topic.kind) == (Domain.FLOOD, "fd-thai-ha", "status")
    assert str(topic) == "t-1/v1/flood/fd-thai-ha/status"
    assert Topic.filter("telemetry") == "hanoi/v1/+/+/telemetry"


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("other/v1/air/x1/telemetry", "is not under"),
        ("hanoi/v1/air/x1", "is not <root>"),
        ("hanoi/v1/sea/x1/telemetry", "unknown domain"),
        ("hanoi/v1/air/Bad_Id/telemetry", "must match"),
    ],
)
def test_bad_topics(topic: str, why: str) -> None:
    with pytest.raises(PayloadError, match=why):
        Topic.parse(topic)


def _message(
    readings: str, time: str = '"2026-11-23T04:00:00Z"', station: str = "aq-hoan-kiem"
) -> bytes:
    return f'{{"station":"{station}","time":{time},"readings":[{readings}]}}'.encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "malformed_json"),
        (b'{"station": "aq-hoan-kiem"', "malformed_json"),
        (b"\xff\xfe\x00", "malformed_json"),
        (_message('{"quantity":"pm25","value":"12","unit":"ug/m3"}'), "schema"),
        (_message('{"quantity":"pm25","value":1,"unit":"ug/m3","extra":1}'), "schema"),
        (_message("", time='"2026-11-23T04:00:00"'), "naive_time"),
        (_message("", station="aq-other"), "station_mismatch"),
        (b"[" + b'{"n":"x","v":1},' * 40000 + b"]", "oversized"),
        (b'[{"n":"urn:dev:hanoi:aq-x:pm25","vs":"high","u":"ug/m3"}]', "senml"),
        (b'[{"n":"not-ours","v":1,"u":"ug/m3"}]', "senml"),
    ],
)
def test_message_level_refusals(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        decode_telemetry(AIR, payload, NOW)
    assert info.value.reason == reason
    assert info.value.detail


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        ('{"quantity":"pm25","value":null,"unit":"ug/m3"}', "not_finite"),
        ('{"quantity":"pm25","value":-3,"unit":"ug/m3"}', "physically_impossible"),
        ('{"quantity":"pm25","value":3,"unit":"ppm"}', "bad_unit"),
        ('{"quantity":"radon","value":3,"unit":"Bq"}', "unknown_quantity"),
        ('{"quantity":"relative_humidity","value":140,"unit":"%RH"}', "physically_impossible"),
    ],
)
def test_reading_level_refusals_keep_the_good_readings(reading: str, reason: str) -> None:
    good = '{"quantity":"no2","value":41.5,"unit":"ug/m3"}'
    decoded = decode_telemetry(AIR, _message(f"{good},{reading}"), NOW)
    assert [r.quantity for r in decoded.readings] == [Quantity.NO2]
    assert [r.reason for r in decoded.rejections] == [reason]


def test_duplicate_keys_within_a_message() -> None:
    twice = '{"quantity":"no2","value":41.5,"unit":"ug/m3"}'
    decoded = decode_telemetry(AIR, _message(f"{twice},{twice}"), NOW)
    assert len(decoded.readings) == 1
    assert [r.reason for r in decoded.rejections] == ["duplicate_key"]


def test_units_are_converted_to_canonical() -> None:
    pack = b"""[{"bn":"urn:dev:hanoi:fd-a:","bt":1790000000,"n":"water_depth","u":"m","v":0.35},
               {"n":"rainfall","u":"m","v":0.012,"t":60},
               {"bn":"urn:dev:hanoi:aq-b:","n":"pm25","u":"kg/m3","v":3.5e-8,"t":-5e8}]"""
    decoded = decode_telemetry(AIR, pack, NOW)
    by = {str(r.sensor_id): r for r in decoded.readings}
    assert math.isclose(by["fd-a.water_depth"].value, 35.0)
    assert math.isclose(by["fd-a.rainfall"].value, 12.0)
    assert math.isclose(by["aq-b.pm25"].value, 35.0)
    assert by["fd-a.rainfall"].measured_at == datetime.fromtimestamp(1790000060, UTC)
    assert by["aq-b.pm25"].measured_at == datetime.fromtimestamp(1790000000 - 5e8, UTC)


@pytest.mark.parametrize(
    "pack",
    [
        b'[{"n":"urn:dev:hanoi:aq-b:pm25","u":"ug/m3","v":20,"t":-30}]',
        b'[{"n":"urn:dev:hanoi:aq-b:pm25","u":"ug/m3","v":20}]',
        b'[{"bt":-60,"n":"urn:dev:hanoi:aq-b:pm25","u":"ug/m3","v":20,"t":30}]',
        b'[{"bn":"urn:dev:hanoi:aq-b:","bt":0,"bu":"ug/m3","n":"pm25","v":20}]',
    ],
)
def test_senml_without_an_absolute_time_is_refused(pack: bytes) -> None:
    # "now" differs at every delivery: a redelivered pack would be stored again at another
    # time, and processing would decide on a time ingest did not store.
    with pytest.raises(PayloadError) as info:
        decode_telemetry(AIR, pack, NOW)
    assert info.value.reason == "relative_time"
    assert "bt" in info.value.detail


def test_senml_times_are_the_same_at_every_delivery() -> None:
    pack = b'[{"bt":1790000000,"n":"urn:dev:hanoi:aq-b:pm25","u":"ug/m3","v":20,"t":-30}]'
    first = decode_telemetry(AIR, pack, NOW).readings
    again = decode_telemetry(AIR, pack, NOW + timedelta(days=3)).readings
    assert [r.measured_at for r in first] == [r.measured_at for r in again]
    assert first[0].measured_at == datetime.fromtimestamp(1790000000 - 30, UTC)


def test_payload_limit() -> None:
    assert MAX_PAYLOAD_BYTES >= 100 * 200  # a 100-reading gateway pack fits


def test_status_forms() -> None:
    topic = Topic.parse("hanoi/v1/air/aq-hoan-kiem/status")
    assert decode_status(topic, b"offline", NOW).online is False
    status = decode_status(topic, encode_status(True, NOW, "boot"), NOW + timedelta(seconds=3))
    assert (status.online, status.at, status.reason) == (True, NOW, "boot")
    with pytest.raises(PayloadError):
        decode_status(topic, b'{"state":"sleeping"}', NOW)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"state":"offline","station":"aq-other"}', "station_mismatch"),
        (b'{"state":"offline","extra":1}', "schema"),
        (b'{"state":"offline","time":"9999-12-31T23:59:59-01:00"}', "time_out_of_range"),
        (b'{"state":"online","time":"0001-01-01T00:00:00+01:00"}', "time_out_of_range"),
        (b'{"state":"online","time":"2026-11-23T04:00:00"}', "naive_time"),
    ],
)
def test_status_refusals(payload: bytes, reason: str) -> None:
    topic = Topic.parse("hanoi/v1/air/aq-hoan-kiem/status")
    with pytest.raises(PayloadError) as info:
        decode_status(topic, payload, NOW)
    assert info.value.reason == reason


def test_a_status_reason_is_bounded() -> None:
    topic = Topic.parse("hanoi/v1/air/aq-hoan-kiem/status")
    status = decode_status(topic, encode_status(False, NOW, "x" * 100_000), NOW)
    assert status.reason is not None
    assert len(status.reason) == MAX_REASON_CHARS


def test_registry_and_truth_documents_round_trip() -> None:
    station = Station(
        StationId("wl-buoy-1"), Domain.WATER, "Hồ Tây – Trích Sài", "Tây Hồ", 21.05, 105.82,
        "buoy", (Sensor(Quantity.DISSOLVED_OXYGEN, 300.0, 0.0, 25.0),), {"depth_m": 1.5},
    )  # fmt: skip
    assert decode_registry(encode_registry([station])) == [station]
    event = TruthEvent("e1", "fish-kill-2016", StationId("wl-buoy-1"), "oxygen_crash", "event",
                       NOW, NOW + timedelta(hours=6), (Quantity.DISSOLVED_OXYGEN,))  # fmt: skip
    assert decode_truth(encode_truth(event)) == event
    with pytest.raises(ValueError, match="not a water quantity"):
        Station(StationId("wl-x"), Domain.WATER, "x", "x", 21.0, 105.0, "buoy",
                    (Sensor(Quantity.PM25, 60.0),))  # fmt: skip
