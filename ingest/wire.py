"""The wire contract: topics, payload schema and the typed values they decode into.

Everything that crosses the broker is defined here and nowhere else. Devices (and the
simulators) encode with :func:`encode_telemetry` / :func:`encode_senml`; ingest and
processing decode every message exactly once with :func:`decode_telemetry` into frozen
:class:`Reading` values.

Topics::

    <root>/<domain>/<station_id>/telemetry   one JSON message per station per sample,
                                             or a SenML pack (RFC 8428) from a gateway
    <root>/<domain>/<station_id>/status      "online"/"offline" (retained; the last will)

The default root is ``hanoi/v1``.

Telemetry payload (JSON object, UTF-8)::

    {"station": "aq-hoan-kiem", "time": "2026-11-23T04:00:00Z", "seq": 17,
     "readings": [{"quantity": "pm25", "value": 35.2, "unit": "ug/m3"}, ...]}

A payload that starts with ``[`` is a SenML pack whose resolved record names are
``urn:dev:hanoi:<station_id>:<quantity>``. Values are converted to the quantity's
canonical unit (SenML primary units such as ``kg/m3`` or ``m`` are scaled).

Every rejection raises :class:`PayloadError` with a stable machine ``reason`` and a human
``detail``; a single bad reading inside an otherwise good message is reported as a
:class:`Rejection` next to the good readings, so nothing is lost and nothing is invented.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, Literal, NewType
from urllib.parse import unquote, urlsplit

import msgspec

__all__ = [
    "DEFAULT_ROOT",
    "MAX_PAYLOAD_BYTES",
    "QUANTITIES",
    "SENML_PREFIX",
    "BrokerAddress",
    "Decoded",
    "Domain",
    "PayloadError",
    "Quantity",
    "QuantitySpec",
    "Reading",
    "Rejection",
    "SensorId",
    "SensorInfo",
    "StationId",
    "StationInfo",
    "StatusMessage",
    "Topic",
    "TruthEvent",
    "Value",
    "Values",
    "decode_registry",
    "decode_status",
    "decode_telemetry",
    "decode_truth",
    "decode_values",
    "encode_registry",
    "encode_senml",
    "encode_status",
    "encode_telemetry",
    "encode_truth",
    "parse_mqtt_url",
    "sensor_id",
    "truth_topic",
]

DEFAULT_ROOT: Final = "hanoi/v1"
MAX_PAYLOAD_BYTES: Final = 256 * 1024
SENML_PREFIX: Final = "urn:dev:hanoi:"
_SENML_ABSOLUTE_TIME: Final = 2**28  # RFC 8428 §4.5.3: smaller times are relative to now
_MAX_READINGS_PER_MESSAGE: Final = 5000

StationId = NewType("StationId", str)
SensorId = NewType("SensorId", str)
"""``<station_id>.<quantity>``: one physical sensor, stable across the whole system."""

_STATION_RE: Final = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_ROOT_RE: Final = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


class Domain(StrEnum):
    """Sensor domains; the second-to-last topic levels are ``<domain>/<station_id>``."""

    AIR = "air"
    WATER = "water"
    FLOOD = "flood"
    TRAFFIC = "traffic"


class Quantity(StrEnum):
    """Every measured quantity the city network knows, with a canonical unit each."""

    PM25 = "pm25"
    PM10 = "pm10"
    NO2 = "no2"
    SO2 = "so2"
    CO = "co"
    O3 = "o3"
    AIR_TEMPERATURE = "air_temperature"
    RELATIVE_HUMIDITY = "relative_humidity"
    WATER_TEMPERATURE = "water_temperature"
    DISSOLVED_OXYGEN = "dissolved_oxygen"
    PH = "ph"
    TURBIDITY = "turbidity"
    CONDUCTIVITY = "conductivity"
    CHLOROPHYLL_A = "chlorophyll_a"
    AMMONIUM = "ammonium"
    RAINFALL = "rainfall"
    WATER_DEPTH = "water_depth"
    FLOW_MOTORBIKE = "flow_motorbike"
    FLOW_CAR = "flow_car"
    FLOW_BUS = "flow_bus"
    FLOW_TRUCK = "flow_truck"
    SPEED = "speed"
    OCCUPANCY = "occupancy"


@dataclass(frozen=True, slots=True)
class QuantitySpec:
    """What the contract knows about a quantity.

    Args:
        unit: canonical unit; stored values are always in it.
        domain: the domain whose stations report it.
        physical_min: below this the value is impossible (quarantined).
        physical_max: above this the value is impossible (quarantined).
        label_vi: Vietnamese name for operators.
        label_en: English name.
        aliases: other unit spellings accepted, with the factor to the canonical unit.
    """

    unit: str
    domain: Domain
    physical_min: float
    physical_max: float
    label_vi: str
    label_en: str
    aliases: tuple[tuple[str, float], ...] = ()


_UGM3 = (("kg/m3", 1e9), ("µg/m3", 1.0), ("ug/m^3", 1.0), ("mg/m3", 1e3))
_FLOW = (("count", 1.0), ("1", 1.0), ("veh", 1.0))

QUANTITIES: Final[dict[Quantity, QuantitySpec]] = {
    Quantity.PM25: QuantitySpec("ug/m3", Domain.AIR, 0, 5000, "Bụi PM2.5", "PM2.5", _UGM3),
    Quantity.PM10: QuantitySpec("ug/m3", Domain.AIR, 0, 10000, "Bụi PM10", "PM10", _UGM3),
    Quantity.NO2: QuantitySpec("ug/m3", Domain.AIR, 0, 20000, "NO2", "NO2", _UGM3),
    Quantity.SO2: QuantitySpec("ug/m3", Domain.AIR, 0, 20000, "SO2", "SO2", _UGM3),
    Quantity.CO: QuantitySpec("ug/m3", Domain.AIR, 0, 500000, "CO", "CO", _UGM3),
    Quantity.O3: QuantitySpec("ug/m3", Domain.AIR, 0, 5000, "O3", "O3", _UGM3),
    Quantity.AIR_TEMPERATURE: QuantitySpec(
        "Cel", Domain.AIR, -40, 60, "Nhiệt độ không khí", "Air temperature", (("degC", 1.0),)
    ),
    Quantity.RELATIVE_HUMIDITY: QuantitySpec(
        "%RH", Domain.AIR, 0, 100, "Độ ẩm", "Relative humidity", (("%", 1.0), ("/", 100.0))
    ),
    Quantity.WATER_TEMPERATURE: QuantitySpec(
        "Cel", Domain.WATER, -5, 50, "Nhiệt độ nước", "Water temperature", (("degC", 1.0),)
    ),
    Quantity.DISSOLVED_OXYGEN: QuantitySpec(
        "mg/L",
        Domain.WATER,
        0,
        40,
        "Oxy hoà tan (DO)",
        "Dissolved oxygen",
        (("mg/l", 1.0), ("kg/m3", 1e3), ("g/l", 1e3)),
    ),
    Quantity.PH: QuantitySpec("pH", Domain.WATER, 0, 14, "pH", "pH"),
    Quantity.TURBIDITY: QuantitySpec("NTU", Domain.WATER, 0, 4000, "Độ đục", "Turbidity"),
    Quantity.CONDUCTIVITY: QuantitySpec(
        "uS/cm", Domain.WATER, 0, 100000, "Độ dẫn điện", "Conductivity", (("S/m", 1e4),)
    ),
    Quantity.CHLOROPHYLL_A: QuantitySpec(
        "ug/L",
        Domain.WATER,
        0,
        2000,
        "Chất diệp lục a",
        "Chlorophyll-a",
        (("ug/l", 1.0), ("kg/m3", 1e6)),
    ),
    Quantity.AMMONIUM: QuantitySpec(
        "mg/L",
        Domain.WATER,
        0,
        200,
        "Amoni (N-NH4)",
        "Ammonium (as N)",
        (("mg/l", 1.0), ("kg/m3", 1e3)),
    ),
    Quantity.RAINFALL: QuantitySpec(
        "mm", Domain.FLOOD, 0, 500, "Lượng mưa", "Rainfall", (("m", 1e3),)
    ),
    Quantity.WATER_DEPTH: QuantitySpec(
        "cm", Domain.FLOOD, -20, 1000, "Độ sâu ngập", "Flood depth", (("m", 100.0), ("mm", 0.1))
    ),
    Quantity.FLOW_MOTORBIKE: QuantitySpec(
        "veh", Domain.TRAFFIC, 0, 20000, "Lưu lượng xe máy", "Motorbike flow", _FLOW
    ),
    Quantity.FLOW_CAR: QuantitySpec(
        "veh", Domain.TRAFFIC, 0, 10000, "Lưu lượng ô tô", "Car flow", _FLOW
    ),
    Quantity.FLOW_BUS: QuantitySpec(
        "veh", Domain.TRAFFIC, 0, 2000, "Lưu lượng xe buýt", "Bus flow", _FLOW
    ),
    Quantity.FLOW_TRUCK: QuantitySpec(
        "veh", Domain.TRAFFIC, 0, 5000, "Lưu lượng xe tải", "Truck flow", _FLOW
    ),
    Quantity.SPEED: QuantitySpec(
        "km/h", Domain.TRAFFIC, 0, 250, "Tốc độ trung bình", "Mean speed", (("m/s", 3.6),)
    ),
    Quantity.OCCUPANCY: QuantitySpec(
        "%", Domain.TRAFFIC, 0, 100, "Độ chiếm dụng", "Occupancy", (("/", 100.0),)
    ),
}

RejectReason = Literal[
    "oversized",
    "not_utf8",
    "malformed_json",
    "schema",
    "bad_topic",
    "station_mismatch",
    "unknown_quantity",
    "bad_unit",
    "not_finite",
    "physically_impossible",
    "duplicate_key",
    "naive_time",
    "future_time",
    "stale_time",
    "unknown_station",
    "unknown_sensor",
    "domain_mismatch",
    "senml",
]


class PayloadError(ValueError):
    """A message (or one reading of it) that breaks the contract.

    Args:
        reason: stable machine-readable code, used as a metric label.
        detail: what exactly is wrong, for the quarantine table and the log.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RejectReason = reason
        self.detail = detail


def sensor_id(station_id: str, quantity: Quantity) -> SensorId:
    """Return the system-wide id of one sensor (``<station>.<quantity>``)."""
    return SensorId(f"{station_id}.{quantity.value}")


class Reading(msgspec.Struct, frozen=True, gc=False):
    """One measured value, decoded and converted to the canonical unit.

    (Values on the hot path are msgspec ``Struct`` types: immutable and typed like a frozen
    dataclass, but about ten times cheaper to build.)

    Args:
        station_id: the reporting station.
        quantity: what was measured.
        value: the value in ``QUANTITIES[quantity].unit``.
        measured_at: tz-aware UTC time of the measurement (device clock).
        received_at: tz-aware UTC time the message reached us.
    """

    station_id: StationId
    quantity: Quantity
    value: float
    measured_at: datetime
    received_at: datetime

    @property
    def sensor_id(self) -> SensorId:
        """The sensor this reading belongs to."""
        return sensor_id(self.station_id, self.quantity)

    @property
    def unit(self) -> str:
        """The canonical unit of :attr:`value`."""
        return QUANTITIES[self.quantity].unit


class Rejection(msgspec.Struct, frozen=True, gc=False):
    """One reading (or a whole message) refused, with its reason."""

    reason: RejectReason
    detail: str
    station_id: str | None = None
    quantity: str | None = None


class Decoded(msgspec.Struct, frozen=True, gc=False):
    """The result of decoding one telemetry message: accepted readings and refusals."""

    readings: tuple[Reading, ...]
    rejections: tuple[Rejection, ...] = ()


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic ``<root>/<domain>/<station_id>/<kind>``.

    Args:
        domain: the station's domain.
        station_id: the station (or gateway) that published.
        kind: ``telemetry`` or ``status``.
        root: the topic root, ``hanoi/v1`` unless configured otherwise.
    """

    domain: Domain
    station_id: StationId
    kind: Literal["telemetry", "status"]
    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        if not _STATION_RE.fullmatch(self.station_id):
            msg = f"station id {self.station_id!r} must match {_STATION_RE.pattern}"
            raise PayloadError("bad_topic", msg)
        if not _ROOT_RE.fullmatch(self.root):
            msg = f"topic root {self.root!r} is not a plain topic path"
            raise PayloadError("bad_topic", msg)

    def __str__(self) -> str:
        return f"{self.root}/{self.domain.value}/{self.station_id}/{self.kind}"

    @classmethod
    def parse(cls, topic: str, root: str = DEFAULT_ROOT) -> Topic:
        """Parse a topic string published under ``root``.

        Raises:
            PayloadError: with reason ``bad_topic`` when it is not one of ours.
        """
        prefix = root + "/"
        if not topic.startswith(prefix):
            msg = f"topic {topic!r} is not under {root!r}"
            raise PayloadError("bad_topic", msg)
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 3 or parts[2] not in ("telemetry", "status"):
            msg = f"topic {topic!r} is not <root>/<domain>/<station>/(telemetry|status)"
            raise PayloadError("bad_topic", msg)
        try:
            domain = Domain(parts[0])
        except ValueError:
            msg = f"unknown domain {parts[0]!r} in topic {topic!r}"
            raise PayloadError("bad_topic", msg) from None
        kind: Literal["telemetry", "status"] = "telemetry" if parts[2] == "telemetry" else "status"
        return cls(domain, StationId(parts[1]), kind, root)

    @staticmethod
    def filter(kind: Literal["telemetry", "status"], root: str = DEFAULT_ROOT) -> str:
        """The subscription filter for every station's ``kind`` messages."""
        return f"{root}/+/+/{kind}"


# --- telemetry -----------------------------------------------------------------------


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
_STATION_OK: Final[dict[str, bool]] = {}
"""Station ids already checked against the pattern (bounded: cleared when it grows)."""
_STATION_CACHE_MAX: Final = 100_000


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


def _station_ok(station: str) -> bool:
    known = _STATION_OK.get(station)
    if known is None:
        if len(_STATION_OK) >= _STATION_CACHE_MAX:
            _STATION_OK.clear()
        known = _STATION_OK[station] = _STATION_RE.fullmatch(station) is not None
    return known


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        msg = f"time {moment.isoformat()} has no UTC offset"
        raise PayloadError("naive_time", msg)
    return moment.astimezone(UTC)


RawItem = tuple[str, str, float | None, str, datetime, float]
"""A reading as sent: (station, quantity name, value, unit, time, time key for duplicates)."""

Value = tuple[str, Quantity, float, datetime]
"""A reading that passed the contract, as a plain tuple: (station, quantity, value, time)."""


class Values(msgspec.Struct, frozen=True, gc=False):
    """One telemetry message decoded into plain value tuples (the ingest hot path's form).

    :func:`decode_telemetry` gives the same as :class:`Reading` values; this form skips
    building an object per reading where the caller only needs the numbers.
    """

    values: list[Value]
    rejections: list[Rejection]


def _collect(items: Iterable[RawItem]) -> Values:
    """Check raw items against the contract: accepted values and per-reading refusals.

    The duplicate check keys on the time's float seconds, not the ``datetime``: hashing an
    aware datetime costs about 0.9 µs, more than the rest of the check.
    """
    values: list[Value] = []
    rejections: list[Rejection] = []
    seen: set[tuple[str, str, float]] = set()
    by_name, specs, station_ok = _BY_NAME, QUANTITIES, _STATION_OK  # locals: hot loop
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
            if not _station_ok(station):
                msg = f"station id {station!r} must match {_STATION_RE.pattern}"
                raise PayloadError("schema", msg)
        except PayloadError as exc:
            rejections.append(Rejection(exc.reason, exc.detail, station, name))
            continue
        values.append((station, quantity, canonical, measured_at))
    return Values(values, rejections)


def _check_size(payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD_BYTES:
        msg = f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"
        raise PayloadError("oversized", msg)


def decode_telemetry(topic: Topic, payload: bytes, received_at: datetime) -> Decoded:
    """Decode one telemetry message into readings (and per-reading refusals).

    Args:
        topic: the parsed topic it arrived on.
        payload: the raw MQTT payload.
        received_at: tz-aware UTC arrival time (also "now" for relative SenML times).

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
    decoded = decode_values(topic, payload, received_at)
    readings = tuple(Reading(StationId(s), q, v, t, received_at) for s, q, v, t in decoded.values)
    return Decoded(readings, tuple(decoded.rejections))


def decode_values(topic: Topic, payload: bytes, received_at: datetime) -> Values:
    """:func:`decode_telemetry`, giving plain value tuples instead of :class:`Reading` objects.

    Raises:
        PayloadError: when the message as a whole is unusable.
    """
    _check_size(payload)
    head = payload[:1]
    if head.isspace():  # (rare) leading whitespace: look past it without copying it all
        head = payload[: len(payload) - len(payload.lstrip()) + 1][-1:]
    if head == b"[":
        return _decode_senml(payload, received_at)
    try:
        message = _message_decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise PayloadError("schema", str(exc)) from None
    except UnicodeDecodeError as exc:  # invalid UTF-8 inside a JSON string
        raise PayloadError("not_utf8", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise PayloadError("malformed_json", str(exc)) from None
    if message.station != topic.station_id:
        msg = f"payload station {message.station!r} differs from topic station {topic.station_id!r}"
        raise PayloadError("station_mismatch", msg)
    if len(message.readings) > _MAX_READINGS_PER_MESSAGE:
        msg = f"{len(message.readings)} readings in one message (max {_MAX_READINGS_PER_MESSAGE})"
        raise PayloadError("oversized", msg)
    measured_at = _utc(message.time)
    station = message.station
    return _collect(
        [(station, r.quantity, r.value, r.unit, measured_at, 0.0) for r in message.readings]
    )


class _SimpleRecord(msgspec.Struct, forbid_unknown_fields=True):
    """The SenML record form gateways send (names, units, numeric values, times)."""

    bn: str | None = None
    bt: float | None = None
    n: str | None = None
    u: str | None = None
    v: float | None = None
    t: float | None = None


_simple_senml_decoder: Final = msgspec.json.Decoder(list[_SimpleRecord])


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
        if abs(seconds) < _SENML_ABSOLUTE_TIME:  # RFC 8428: relative to now
            self.moment = self.received_at + timedelta(seconds=seconds)
        else:
            try:
                self.moment = datetime.fromtimestamp(seconds, UTC)
            except (OverflowError, OSError, ValueError):
                msg = f"record {index}: time {seconds!r} out of range"
                raise PayloadError("senml", msg) from None
        self.last = seconds
        return self.moment


_NAMES: Final[dict[str, tuple[str, str]]] = {}
"""Resolved SenML names already split into (station, quantity) (bounded: cleared when full)."""
_NAMES_MAX: Final = 200_000


def _senml_name(index: int, name: str) -> tuple[str, str]:
    known = _NAMES.get(name)
    if known is not None:
        return known
    parts = name.split(":")
    if len(parts) != 5 or not name.startswith(SENML_PREFIX):
        msg = f"record {index}: name {name!r} is not {SENML_PREFIX}<station>:<quantity>"
        raise PayloadError("senml", msg)
    if len(_NAMES) >= _NAMES_MAX:
        _NAMES.clear()
    known = _NAMES[name] = (parts[3], parts[4])
    return known


def _simple_items(records: Sequence[_SimpleRecord], received_at: datetime) -> list[RawItem]:
    """The fast path of :func:`_senml_items` for records without rarely used fields."""
    base_name, base_time, clock, names = "", 0.0, _Clock(received_at), _NAMES
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
        parsed = names.get(name) or _senml_name(index, name)
        seconds = base_time + t if t is not None else base_time
        if seconds != last:
            moment, last = clock.at(index, seconds), seconds
        items.append((parsed[0], parsed[1], value, unit, moment, seconds))
    return items


def _senml_items(records: Sequence[_SenMLRecord], received_at: datetime) -> Iterator[RawItem]:
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
        station, quantity = _senml_name(index, base_name + (rec.n or ""))
        unit = rec.u if rec.u is not None else base_unit
        if unit is None:
            msg = f"record {index}: no unit"
            raise PayloadError("bad_unit", msg)
        seconds = base_time + (rec.t or 0.0)
        moment = clock.at(index, seconds)
        yield station, quantity, base_value + (rec.v or 0.0), unit, moment, seconds


def _decode_senml(payload: bytes, received_at: datetime) -> Values:
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
    if len(records) > _MAX_READINGS_PER_MESSAGE:
        msg = f"{len(records)} SenML records in one pack (max {_MAX_READINGS_PER_MESSAGE})"
        raise PayloadError("oversized", msg)
    if simple is not None:
        return _collect(_simple_items(simple, received_at))
    return _collect(list(_senml_items(records, received_at)))  # type: ignore[arg-type]


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
        "time": _utc(measured_at),
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
        seconds = _utc(moment).timestamp()
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


# --- status (last will) ------------------------------------------------------------------


class StatusMessage(msgspec.Struct, frozen=True, gc=False):
    """A device's online/offline state as published on its retained status topic."""

    station_id: StationId
    online: bool
    at: datetime
    reason: str | None = None


class _StatusIn(msgspec.Struct):
    state: Literal["online", "offline"]
    time: datetime | None = None
    reason: str | None = None


_status_decoder: Final = msgspec.json.Decoder(_StatusIn)


def encode_status(online: bool, at: datetime | None = None, reason: str | None = None) -> bytes:
    """Encode a status payload; the last will is encoded without a time."""
    body: dict[str, object] = {"state": "online" if online else "offline"}
    if at is not None:
        body["time"] = _utc(at)
    if reason:
        body["reason"] = reason
    return _encoder.encode(body)


def decode_status(topic: Topic, payload: bytes, received_at: datetime) -> StatusMessage:
    """Decode a status payload: ``online``/``offline`` or the JSON form of :func:`encode_status`.

    Raises:
        PayloadError: when it is neither.
    """
    _check_size(payload)
    text = payload.strip()
    if text in (b"online", b"offline"):
        return StatusMessage(topic.station_id, text == b"online", received_at)
    try:
        status = _status_decoder.decode(text)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise PayloadError("schema", f"status: {exc}") from None
    at = _utc(status.time) if status.time is not None else received_at
    return StatusMessage(topic.station_id, status.state == "online", at, status.reason)


# --- registry document ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """One sensor of a station as registered.

    Args:
        quantity: what it measures (unit: the quantity's canonical unit).
        interval_s: nominal reporting interval in seconds.
        valid_min: lower bound of the plausible range; outside it readings are flagged.
        valid_max: upper bound of the plausible range.
    """

    quantity: Quantity
    interval_s: float
    valid_min: float | None = None
    valid_max: float | None = None


@dataclass(frozen=True, slots=True)
class StationInfo:
    """A station (or a gateway's station) in the registry.

    Args:
        station_id: stable id, also the topic level.
        domain: air, water, flood or traffic.
        name: display name (Vietnamese place name).
        district: Hanoi district (quận/huyện).
        lat: WGS84 latitude.
        lon: WGS84 longitude.
        kind: station type (e.g. ``traffic``, ``buoy``, ``rain_gauge``, ``flood_depth``).
        sensors: its sensors.
        attributes: free metadata (e.g. upstream rain gauge of a flood sensor).
    """

    station_id: StationId
    domain: Domain
    name: str
    district: str
    lat: float
    lon: float
    kind: str
    sensors: tuple[SensorInfo, ...]
    attributes: dict[str, str | float | int | bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _STATION_RE.fullmatch(self.station_id):
            msg = f"station id {self.station_id!r} must match {_STATION_RE.pattern}"
            raise ValueError(msg)
        for sensor in self.sensors:
            if QUANTITIES[sensor.quantity].domain is not self.domain:
                msg = f"{self.station_id}: {sensor.quantity} is not a {self.domain} quantity"
                raise ValueError(msg)


_registry_decoder: Final = msgspec.json.Decoder(list[StationInfo])


def encode_registry(stations: Iterable[StationInfo]) -> bytes:
    """Encode station descriptors as the JSON registry document."""
    return msgspec.json.format(_encoder.encode(list(stations)), indent=1)


def decode_registry(document: bytes) -> list[StationInfo]:
    """Decode a registry document written by :func:`encode_registry`.

    Raises:
        PayloadError: with reason ``schema`` when it does not match.
    """
    try:
        return _registry_decoder.decode(document)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise PayloadError("schema", f"registry: {exc}") from None


# --- ground truth (simulators -> evaluation) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class TruthEvent:
    """An injected event or fault, published by the simulators so detectors can be scored.

    Args:
        event_id: unique id of this injection.
        scenario: the scenario that injected it.
        station_id: the affected station.
        kind: what happened, e.g. ``flood``, ``oxygen_crash``, ``pollution_episode``,
            ``traffic_incident``, ``stuck``, ``drift``, ``spike``, ``dropout``, ``offline``.
        category: ``event`` (something in the city) or ``fault`` (something in the sensor).
        start: tz-aware UTC start (simulated time).
        end: tz-aware UTC end (simulated time).
        quantities: the quantities it affects (empty: all of the station's).
        detail: free text.
    """

    event_id: str
    scenario: str
    station_id: StationId
    kind: str
    category: Literal["event", "fault"]
    start: datetime
    end: datetime
    quantities: tuple[Quantity, ...] = ()
    detail: str = ""


def truth_topic(root: str = DEFAULT_ROOT) -> str:
    """The topic ground-truth events are published on (not a station topic)."""
    return f"{root}/_sim/truth"


_truth_decoder: Final = msgspec.json.Decoder(TruthEvent)


def encode_truth(event: TruthEvent) -> bytes:
    """Encode a ground-truth event (one JSON object; a JSON-lines file holds many)."""
    return _encoder.encode(event)


def decode_truth(payload: bytes) -> TruthEvent:
    """Decode a ground-truth event.

    Raises:
        PayloadError: with reason ``schema`` when it does not match.
    """
    try:
        return _truth_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise PayloadError("schema", f"truth: {exc}") from None


# --- where the broker is (shared by devices and services) --------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where and how to reach a broker."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Parse ``mqtt[s]://[user[:password]@]host[:port]``.

    >>> parse_mqtt_url("mqtts://ops:s3cret@broker.example:8883")
    BrokerAddress(host='broker.example', port=8883, tls=True, username='ops', password='s3cret')

    Raises:
        ValueError: for another scheme or a missing host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        msg = f"broker URL {url!r} must start with mqtt:// or mqtts://"
        raise ValueError(msg)
    if not parts.hostname:
        msg = f"broker URL {url!r} has no host"
        raise ValueError(msg)
    tls = parts.scheme in ("mqtts", "ssl")
    return BrokerAddress(
        parts.hostname,
        parts.port or (8883 if tls else 1883),
        tls,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )
