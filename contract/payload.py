"""Telemetry payloads: plain JSON and SenML (RFC 8428) packs to readings, and back.

Devices (and the simulators) encode with :func:`encode_telemetry` / :func:`encode_senml`;
ingest and processing decode every message exactly once, with a :class:`TelemetryDecoder`,
into frozen :class:`~contract.reading.Reading` values (or plain value tuples on the ingest
hot path).

Telemetry payload (JSON object, UTF-8)::

    {"station": "aq-hoan-kiem", "time": "2026-11-23T04:00:00Z", "seq": 17,
     "readings": [{"quantity": "pm25", "value": 35.2, "unit": "ug/m3"}, ...]}

A payload that starts with ``[`` is a SenML pack whose resolved record names are
``urn:dev:hanoi:<station_id>:<quantity>``. Values are converted to the quantity's
canonical unit (SenML primary units such as ``kg/m3`` or ``m`` are scaled).

Every rejection raises :class:`~contract.errors.PayloadError` with a stable machine
``reason`` and a human ``detail``; a single bad reading inside an otherwise good message is
reported as a :class:`~contract.reading.Rejection` next to the good readings, so nothing is
lost and nothing is invented.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Final

import msgspec

from contract.errors import PayloadError
from contract.quantities import QUANTITIES, Quantity
from contract.reading import Decoded, RawItem, Reading, Rejection, Value, Values
from contract.topic import STATION_ID_RE, StationId, Topic

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "MAX_READINGS_PER_MESSAGE",
    "SENML_PREFIX",
    "TelemetryDecoder",
    "check_size",
    "decode_telemetry",
    "decode_values",
    "encode_senml",
    "encode_telemetry",
    "to_utc",
]

MAX_PAYLOAD_BYTES: Final = 256 * 1024
MAX_READINGS_PER_MESSAGE: Final = 5000
SENML_PREFIX: Final = "urn:dev:hanoi:"
_SENML_ABSOLUTE_TIME: Final = 2**28  # RFC 8428 §4.5.3: smaller times are relative to now
_CACHE_MAX: Final = 200_000


class _ReadingIn(msgspec.Struct, forbid_unknown_fields=True):
    quantity: str
    value: float | None  # null is refused per reading, not for the whole message
    unit: str


class _MessageIn(msgspec.Struct, forbid_unknown_fields=True):
    station: str
    time: datetime
    readings: list[_ReadingIn]
    seq: int | None = None


class _SenMLRecord(msgspec.Struct, omit_defaults=True):
    bn: str | None = None
    bt: float | None = None
    bu: str | None = None
    bv: float | None = None
    bver: int | None = None
    n: str | None = None
    u: str | None = None
    v: float | None = None
    vs: str | None = None
    vb: bool | None = None
    vd: str | None = None
    s: float | None = None
    t: float | None = None
    ut: float | None = None


_message_decoder: Final = msgspec.json.Decoder(_MessageIn)
_senml_decoder: Final = msgspec.json.Decoder(list[_SenMLRecord])
_encoder: Final = msgspec.json.Encoder()
_BY_NAME: Final[dict[str, Quantity]] = {q.value: q for q in Quantity}


class _SimpleRecord(msgspec.Struct, forbid_unknown_fields=True):
    """The SenML record form gateways send (names, units, numeric values, times)."""

    bn: str | None = None
    bt: float | None = None
    n: str | None = None
    u: str | None = None
    v: float | None = None
    t: float | None = None


_simple_senml_decoder: Final = msgspec.json.Decoder(list[_SimpleRecord])


def _canonical(quantity: Quantity, value: float, unit: str) -> float:
    spec = QUANTITIES[quantity]
    if unit == spec.unit:
        factor = 1.0
    else:
        for alias, alias_factor in spec.aliases:
            if unit == alias:
                factor = alias_factor
                break
        else:
            accepted = ", ".join([spec.unit, *(a for a, _ in spec.aliases)])
            msg = f"{quantity.value} in {unit!r}; accepted units: {accepted}"
            raise PayloadError("bad_unit", msg)
    if not math.isfinite(value):
        msg = f"{quantity.value} value {value!r} is not a finite number"
        raise PayloadError("not_finite", msg)
    converted = value * factor
    if not spec.physical_min <= converted <= spec.physical_max:
        msg = (
            f"{quantity.value} = {converted:g} {spec.unit} is outside the physical range "
            f"[{spec.physical_min:g}, {spec.physical_max:g}]"
        )
        raise PayloadError("physically_impossible", msg)
    return converted


def to_utc(moment: datetime) -> datetime:
    """The same instant in UTC.

    A time near the ends of the representable range can be written with an offset that
    puts its instant outside it (``9999-12-31T23:59:59-01:00`` is year 10000 in UTC,
    ``0001-01-01T00:00:00+01:00`` is year 0): such a time is refused, not raised.

    >>> try:
    ...     to_utc(datetime.fromisoformat("9999-12-31T23:59:59-01:00"))
    ... except PayloadError as exc:
    ...     exc.reason
    'time_out_of_range'

    Raises:
        PayloadError: ``naive_time`` when the time has no UTC offset, ``time_out_of_range``
            when its instant cannot be represented in UTC.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        msg = f"time {moment.isoformat()} has no UTC offset"
        raise PayloadError("naive_time", msg)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        msg = f"time {moment.isoformat()} is outside the representable range in UTC"
        raise PayloadError("time_out_of_range", msg) from None


def check_size(payload: bytes) -> None:
    """Refuse a payload over :data:`MAX_PAYLOAD_BYTES` (``oversized``)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        msg = f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"
        raise PayloadError("oversized", msg)


class _Clock:
    """SenML times to datetimes, converting each distinct time once (packs share times)."""

    __slots__ = ("last", "moment", "received_at")

    def __init__(self, received_at: datetime) -> None:
        self.received_at = received_at
        self.last = math.nan
        self.moment = received_at

    def at(self, index: int, seconds: float) -> datetime:
        if seconds == self.last:
            return self.moment
        if not math.isfinite(seconds):
            msg = f"record {index}: time is not finite"
            raise PayloadError("senml", msg)
        if abs(seconds) < _SENML_ABSOLUTE_TIME:
            # RFC 8428 reads such a time as relative to "now". Every delivery of the message
            # has another "now", so a redelivered or retained pack would be stored again at
            # another time, and processing would decide on a time ingest did not store: a
            # pack must carry an absolute time (a base time ``bt``).
            msg = (
                f"record {index}: time {seconds!r} is relative to the time of delivery; "
                "give an absolute base time (bt, seconds since 1970)"
            )
            raise PayloadError("relative_time", msg)
        try:
            self.moment = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            msg = f"record {index}: time {seconds!r} out of range"
            raise PayloadError("time_out_of_range", msg) from None
        self.last = seconds
        return self.moment


class TelemetryDecoder:
    """Decodes telemetry payloads; one per consumer, owning its (bounded) caches.

    Station ids already checked and SenML names already split are remembered, because a
    fleet sends the same few thousand of them again and again; each cache is cleared when
    it reaches ``cache_max`` entries.

    Args:
        cache_max: entries per cache at most.
    """

    def __init__(self, *, cache_max: int = _CACHE_MAX) -> None:
        self._cache_max = cache_max
        self._station_ok: dict[str, bool] = {}
        self._names: dict[str, tuple[str, str]] = {}

    def readings(self, topic: Topic, payload: bytes, received_at: datetime) -> Decoded:
        """Decode one telemetry message into readings (and per-reading refusals).

        Raises:
            PayloadError: when the message as a whole is unusable.
        """
        decoded = self.values(topic, payload, received_at)
        readings = tuple(
            Reading(StationId(s), q, v, t, received_at) for s, q, v, t in decoded.values
        )
        return Decoded(readings, tuple(decoded.rejections))

    def values(self, topic: Topic, payload: bytes, received_at: datetime) -> Values:
        """:meth:`readings`, giving plain value tuples instead of Reading objects.

        Raises:
            PayloadError: when the message as a whole is unusable.
        """
        check_size(payload)
        head = payload[:1]
        if head.isspace():  # (rare) leading whitespace: look past it without copying it all
            head = payload[: len(payload) - len(payload.lstrip()) + 1][-1:]
        if head == b"[":
            return self._decode_senml(payload, received_at)
        try:
            message = _message_decoder.decode(payload)
        except msgspec.ValidationError as exc:
            raise PayloadError("schema", str(exc)) from None
        except UnicodeDecodeError as exc:  # invalid UTF-8 inside a JSON string
            raise PayloadError("not_utf8", str(exc)) from None
        except msgspec.DecodeError as exc:
            raise PayloadError("malformed_json", str(exc)) from None
        if message.station != topic.station_id:
            msg = (
                f"payload station {message.station!r} differs from topic station "
                f"{topic.station_id!r}"
            )
            raise PayloadError("station_mismatch", msg)
        if len(message.readings) > MAX_READINGS_PER_MESSAGE:
            msg = (
                f"{len(message.readings)} readings in one message (max {MAX_READINGS_PER_MESSAGE})"
            )
            raise PayloadError("oversized", msg)
        measured_at = to_utc(message.time)
        station = message.station
        return self._collect(
            [(station, r.quantity, r.value, r.unit, measured_at, 0.0) for r in message.readings]
        )

    def _is_station(self, station: str) -> bool:
        known = self._station_ok.get(station)
        if known is None:
            if len(self._station_ok) >= self._cache_max:
                self._station_ok.clear()
            known = self._station_ok[station] = STATION_ID_RE.fullmatch(station) is not None
        return known

    def _collect(self, items: Iterable[RawItem]) -> Values:
        """Check raw items against the contract: accepted values and per-reading refusals.

        The duplicate check keys on the time's float seconds, not the ``datetime``: hashing an
        aware datetime costs about 0.9 µs, more than the rest of the check.
        """
        values: list[Value] = []
        rejections: list[Rejection] = []
        seen: set[tuple[str, str, float]] = set()
        by_name, specs, station_ok = _BY_NAME, QUANTITIES, self._station_ok  # hot loop
        for station, name, value, unit, measured_at, time_key in items:
            key = (station, name, time_key)
            quantity = by_name.get(name)
            if (
                key not in seen
                and quantity is not None
                and value is not None
                and unit == (spec := specs[quantity]).unit
                and spec.physical_min <= value <= spec.physical_max
                and station_ok.get(station)
            ):  # the common case: a new key, a known quantity in its unit, in range, good id
                seen.add(key)
                values.append((station, quantity, value, measured_at))
                continue
            try:
                if key in seen:
                    msg = f"{name} at {measured_at.isoformat()} appears twice in one message"
                    raise PayloadError("duplicate_key", msg)
                seen.add(key)
                if quantity is None:
                    msg = f"unknown quantity {name!r}"
                    raise PayloadError("unknown_quantity", msg)
                if value is None:
                    msg = f"{name} value is null"
                    raise PayloadError("not_finite", msg)
                canonical = _canonical(quantity, value, unit)
                if not self._is_station(station):
                    msg = f"station id {station!r} must match {STATION_ID_RE.pattern}"
                    raise PayloadError("schema", msg)
            except PayloadError as exc:
                rejections.append(Rejection(exc.reason, exc.detail, station, name))
                continue
            values.append((station, quantity, canonical, measured_at))
        return Values(values, rejections)

    def _senml_name(self, index: int, name: str) -> tuple[str, str]:
        known = self._names.get(name)
        if known is not None:
            return known
        parts = name.split(":")
        if len(parts) != 5 or not name.startswith(SENML_PREFIX):
            msg = f"record {index}: name {name!r} is not {SENML_PREFIX}<station>:<quantity>"
            raise PayloadError("senml", msg)
        if len(self._names) >= self._cache_max:
            self._names.clear()
        known = self._names[name] = (parts[3], parts[4])
        return known

    def _simple_items(
        self, records: Sequence[_SimpleRecord], received_at: datetime
    ) -> list[RawItem]:
        """The fast path of :func:`_senml_items` for records without rarely used fields."""
        base_name, base_time, clock, names = "", 0.0, _Clock(received_at), self._names
        last, moment = math.nan, received_at
        items: list[RawItem] = []
        for index, rec in enumerate(records):
            if rec.bn is not None:
                base_name = rec.bn
            if rec.bt is not None:
                base_time = rec.bt
            value, n, unit, t = rec.v, rec.n, rec.u, rec.t
            if value is None or unit is None:
                if value is None and n is None:
                    continue  # a base-only record carries no measurement
                if value is None:
                    msg = f"record {index}: no numeric value"
                    raise PayloadError("senml", msg)
                msg = f"record {index}: no unit"
                raise PayloadError("bad_unit", msg)
            name = base_name + n if n is not None else base_name
            parsed = names.get(name) or self._senml_name(index, name)
            seconds = base_time + t if t is not None else base_time
            if seconds != last:
                moment, last = clock.at(index, seconds), seconds
            items.append((parsed[0], parsed[1], value, unit, moment, seconds))
        return items

    def _senml_items(
        self, records: Sequence[_SenMLRecord], received_at: datetime
    ) -> Iterator[RawItem]:
        base_name, base_time, base_unit, base_value = "", 0.0, None, 0.0
        clock = _Clock(received_at)
        for index, rec in enumerate(records):
            if rec.bver is not None and rec.bver > 10:
                msg = f"record {index}: SenML version {rec.bver} is newer than 10"
                raise PayloadError("senml", msg)
            base_name = rec.bn if rec.bn is not None else base_name
            base_time = rec.bt if rec.bt is not None else base_time
            base_unit = rec.bu if rec.bu is not None else base_unit
            base_value = rec.bv if rec.bv is not None else base_value
            if rec.vs is not None or rec.vb is not None or rec.vd is not None:
                msg = f"record {index}: only numeric values are accepted"
                raise PayloadError("senml", msg)
            if rec.v is None and rec.bv is None:
                if rec.n is None and rec.s is None:
                    continue  # a base-only record carries no measurement
                msg = f"record {index}: no numeric value"
                raise PayloadError("senml", msg)
            station, quantity = self._senml_name(index, base_name + (rec.n or ""))
            unit = rec.u if rec.u is not None else base_unit
            if unit is None:
                msg = f"record {index}: no unit"
                raise PayloadError("bad_unit", msg)
            seconds = base_time + (rec.t or 0.0)
            moment = clock.at(index, seconds)
            yield station, quantity, base_value + (rec.v or 0.0), unit, moment, seconds

    def _decode_senml(self, payload: bytes, received_at: datetime) -> Values:
        simple: list[_SimpleRecord] | None = None
        with contextlib.suppress(msgspec.DecodeError, UnicodeDecodeError):  # then: the full form
            simple = _simple_senml_decoder.decode(payload)
        try:
            records = simple if simple is not None else _senml_decoder.decode(payload)
        except msgspec.ValidationError as exc:
            raise PayloadError("schema", f"SenML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise PayloadError("not_utf8", f"SenML: {exc}") from None
        except msgspec.DecodeError as exc:
            raise PayloadError("malformed_json", str(exc)) from None
        if len(records) > MAX_READINGS_PER_MESSAGE:
            msg = f"{len(records)} SenML records in one pack (max {MAX_READINGS_PER_MESSAGE})"
            raise PayloadError("oversized", msg)
        if simple is not None:
            return self._collect(self._simple_items(simple, received_at))
        return self._collect(list(self._senml_items(records, received_at)))  # type: ignore[arg-type]


def decode_telemetry(topic: Topic, payload: bytes, received_at: datetime) -> Decoded:
    """Decode one telemetry message with a fresh :class:`TelemetryDecoder`.

    (Services keep one decoder, and its caches, for all their messages.)

    Args:
        topic: the parsed topic it arrived on.
        payload: the raw MQTT payload.
        received_at: tz-aware UTC arrival time (each reading's ``received_at``; never a
            measurement time: a SenML time relative to "now" is refused).

    Raises:
        PayloadError: when the message as a whole is unusable.

    >>> from datetime import datetime, UTC
    >>> t = Topic.parse("hanoi/v1/flood/fd-thai-ha/telemetry")
    >>> body = b'{"station":"fd-thai-ha","time":"2026-09-30T06:00:00+07:00",'
    >>> body += b'"readings":[{"quantity":"water_depth","value":0.31,"unit":"m"}]}'
    >>> r = decode_telemetry(t, body, datetime(2026, 9, 29, 23, 0, 5, tzinfo=UTC)).readings[0]
    >>> (r.sensor_id, round(r.value, 1), r.unit, r.measured_at.isoformat())
    ('fd-thai-ha.water_depth', 31.0, 'cm', '2026-09-29T23:00:00+00:00')
    """
    return TelemetryDecoder().readings(topic, payload, received_at)


def decode_values(topic: Topic, payload: bytes, received_at: datetime) -> Values:
    """:func:`decode_telemetry`, giving plain value tuples.

    Raises:
        PayloadError: when the message as a whole is unusable.
    """
    return TelemetryDecoder().values(topic, payload, received_at)


def encode_telemetry(
    station_id: str,
    measured_at: datetime,
    values: Iterable[tuple[Quantity, float]],
    *,
    seq: int | None = None,
) -> bytes:
    """Encode one station sample (values in canonical units) as a telemetry payload."""
    body: dict[str, object] = {
        "station": station_id,
        "time": to_utc(measured_at),
        "readings": [
            {"quantity": q.value, "value": v, "unit": QUANTITIES[q].unit} for q, v in values
        ],
    }
    if seq is not None:
        body["seq"] = seq
    return _encoder.encode(body)


def encode_senml(readings: Iterable[tuple[str, Quantity, float, datetime]]) -> bytes:
    """Encode (station, quantity, value, time) tuples as one SenML pack (gateway form).

    Times are absolute; values use the canonical units (mapped to SenML where one exists).
    """
    records: list[dict[str, object]] = []
    base_time: float | None = None
    for station, quantity, value, moment in readings:
        seconds = to_utc(moment).timestamp()
        record: dict[str, object] = {
            "n": f"{SENML_PREFIX}{station}:{quantity.value}",
            "u": QUANTITIES[quantity].unit,
            "v": value,
        }
        if base_time is None:
            base_time = seconds
            record["bt"] = seconds
        else:
            record["t"] = seconds - base_time
        records.append(record)
    return _encoder.encode(records)
