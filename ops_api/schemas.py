"""Request and response models of the REST API (pydantic at the edge).

Times serialise as ISO 8601 UTC (``...Z``); fields a person reads also come as
``*_local`` in Asia/Ho_Chi_Minh. Rows from :mod:`ops_api.queries` become these models
through the ``from_row`` class methods, so routes stay one call deep. Alert models are in
:mod:`ops_api.alert_schemas`.
"""

from __future__ import annotations

import base64
from typing import Final, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from contract import QUANTITIES, Domain, Quantity, StationStateName, display_unit
from ops_api.history import HistoryPointRow
from ops_api.queries import LatestRow, QuarantineRow, SensorRow, StatusRow
from ops_api.timefmt import UtcDatetime
from processing.alerts import Severity
from processing.derived import IndexRow

__all__ = [
    "ErrorItem",
    "ErrorOut",
    "Feature",
    "HistoryOut",
    "HistoryPointOut",
    "IndexOut",
    "LatestOut",
    "PointGeometry",
    "QuarantineListOut",
    "QuarantineOut",
    "SensorOut",
    "StationCollection",
    "StationDetailProperties",
    "StationProperties",
    "StatusChangeOut",
    "quantity_labels",
]

_PAYLOAD_PREVIEW_BYTES: Final = 4096


def quantity_labels(quantity: str) -> tuple[str, str]:
    """Vietnamese and English names of a quantity (the raw name when it is unknown)."""
    try:
        spec = QUANTITIES[Quantity(quantity)]
    except ValueError:
        return quantity, quantity
    return spec.label_vi, spec.label_en


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorItem(_Out):
    """One validation error: where (``["query", "limit"]``) and why."""

    loc: list[str]
    msg: str
    type: str


class ErrorOut(_Out):
    """The body of every error response."""

    detail: str = Field(description="Vietnamese / English message")
    code: str = Field(description="stable machine-readable reason, e.g. not_found, overloaded")
    message_vi: str
    message_en: str
    errors: list[ErrorItem] | None = Field(
        default=None, description="validation errors (422 only), at most 20"
    )


# --- stations --------------------------------------------------------------------------------


class PointGeometry(_Out):
    """A GeoJSON point (``[lon, lat]``, WGS84)."""

    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float]


class LatestValueOut(_Out):
    """The newest value of one of a station's sensors."""

    sensor: str = Field(description="<station>.<quantity>")
    quantity: str
    label_vi: str
    label_en: str
    unit: str
    unit_display: str = Field(description="the unit as people read it: µg/m³, °C, xe/phút")
    value: float
    quality: int
    time: UtcDatetime
    received_at: UtcDatetime

    @classmethod
    def from_row(cls, row: LatestRow) -> Self:
        """Build from a ``latest_readings`` row."""
        vi, en = quantity_labels(row.quantity)
        return cls(
            sensor=f"{row.station_id}.{row.quantity}",
            quantity=row.quantity,
            label_vi=vi,
            label_en=en,
            unit=row.unit,
            unit_display=display_unit(row.unit, row.interval_s),
            value=row.value,
            quality=row.quality,
            time=row.time,
            received_at=row.received_at,
        )


class IndexValueOut(_Out):
    """One official index value (VN_AQI, water quality, congestion, ...)."""

    index: str
    value: float | None
    level: str | None
    dominant: str | None
    time: UtcDatetime
    details: dict[str, JsonValue]

    @classmethod
    def from_row(cls, row: IndexRow) -> Self:
        """Build from an ``indices`` row."""
        return cls(
            index=row.index,
            value=row.value,
            level=row.level,
            dominant=row.dominant,
            time=row.time,
            details=row.details,
        )


class StationProperties(_Out):
    """What the map and the panels show about a station."""

    station_id: str
    name: str
    domain: Domain
    district: str
    kind: str
    state: StationStateName = Field(description="online, offline, stale or unknown")
    reported_state: str | None = Field(description="the device's own last status")
    state_since: UtcDatetime | None
    state_reason: str | None
    last_received: UtcDatetime | None
    last_measured: UtcDatetime | None
    open_alerts: int
    max_open_severity: Severity | None
    latest: list[LatestValueOut]
    indices: list[IndexValueOut]
    attributes: dict[str, JsonValue]


class SensorOut(_Out):
    """One registered sensor."""

    sensor: str
    quantity: str
    label_vi: str
    label_en: str
    unit: str
    unit_display: str = Field(description="the unit as people read it: µg/m³, °C, xe/phút")
    interval_s: float
    valid_min: float | None
    valid_max: float | None

    @classmethod
    def from_row(cls, row: SensorRow) -> Self:
        """Build from a ``sensors`` row."""
        vi, en = quantity_labels(row.quantity)
        return cls(
            sensor=f"{row.station_id}.{row.quantity}",
            quantity=row.quantity,
            label_vi=vi,
            label_en=en,
            unit=row.unit,
            unit_display=display_unit(row.unit, row.interval_s),
            interval_s=row.interval_s,
            valid_min=row.valid_min,
            valid_max=row.valid_max,
        )


class StatusChangeOut(_Out):
    """One device status transition."""

    state: str
    at: UtcDatetime
    reason: str | None

    @classmethod
    def from_row(cls, row: StatusRow) -> Self:
        """Build from a ``sensor_status`` row."""
        return cls(state=row.state, at=row.at, reason=row.reason)


class StationDetailProperties(StationProperties):
    """A station with its sensors and recent status history."""

    sensors: list[SensorOut]
    status_history: list[StatusChangeOut]


P = TypeVar("P", bound=BaseModel)


class Feature(_Out, Generic[P]):
    """A GeoJSON feature (RFC 7946) whose id is the station id."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry
    properties: P


class StationCollection(_Out):
    """A GeoJSON FeatureCollection of stations."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature[StationProperties]]
    generated_at: UtcDatetime


class LatestOut(LatestValueOut):
    """The newest value of one sensor, with its station."""

    station_id: str
    domain: str
    district: str

    @classmethod
    def from_row(cls, row: LatestRow) -> Self:
        """Build from a ``latest_readings`` row."""
        base = LatestValueOut.from_row(row).model_dump()
        return cls(**base, station_id=row.station_id, domain=row.domain, district=row.district)


# --- history and indices --------------------------------------------------------------------


class HistoryPointOut(_Out):
    """One point; a bucket's start time, mean, extremes and count (raw: ``n == 1``)."""

    t: UtcDatetime
    avg: float
    min: float
    max: float
    n: int

    @classmethod
    def from_row(cls, row: HistoryPointRow) -> Self:
        """Build from a history row."""
        return cls(t=row.t, avg=row.avg, min=row.min, max=row.max, n=row.n)


class HistoryOut(_Out):
    """A sensor's series over ``[start, end)``, at most ``max_points`` points."""

    sensor: str
    unit: str
    unit_display: str = Field(description="the unit as people read it: µg/m³, °C, xe/phút")
    start: UtcDatetime
    end: UtcDatetime
    max_points: int
    source: Literal["raw", "1m", "1h"] = Field(description="readings or which rollup")
    bucket_s: int | None = Field(description="bucket width; null for raw readings")
    points: list[HistoryPointOut]


class IndexOut(IndexValueOut):
    """One index value of one station."""

    station_id: str

    @classmethod
    def from_row(cls, row: IndexRow) -> Self:
        """Build from an ``indices`` row."""
        return cls(**IndexValueOut.from_row(row).model_dump(), station_id=row.station_id)


# --- quarantine ------------------------------------------------------------------------------


class QuarantineOut(_Out):
    """A refused message, its payload as UTF-8 text or, when binary, base64 (first 4 KiB)."""

    quarantine_id: int
    received_at: UtcDatetime
    topic: str
    client_id: str | None
    reason: str
    detail: str
    station_id: str | None
    quantity: str | None
    readings: int
    replayed_at: UtcDatetime | None
    replay_outcome: str | None
    payload_bytes: int
    payload_encoding: Literal["text", "base64"]
    payload: str
    payload_truncated: bool

    @classmethod
    def from_row(cls, row: QuarantineRow) -> Self:
        """Build from a ``quarantine`` row, never echoing raw bytes."""
        text = _printable(row.payload)
        encoding: Literal["text", "base64"] = "text" if text is not None else "base64"
        if text is not None:
            shown, truncated = text[:_PAYLOAD_PREVIEW_BYTES], len(text) > _PAYLOAD_PREVIEW_BYTES
        else:
            head = row.payload[:_PAYLOAD_PREVIEW_BYTES]
            shown = base64.b64encode(head).decode("ascii")
            truncated = len(row.payload) > _PAYLOAD_PREVIEW_BYTES
        return cls(
            quarantine_id=row.quarantine_id,
            received_at=row.received_at,
            topic=row.topic,
            client_id=row.client_id,
            reason=row.reason,
            detail=row.detail,
            station_id=row.station_id,
            quantity=row.quantity,
            readings=row.readings,
            replayed_at=row.replayed_at,
            replay_outcome=row.replay_outcome,
            payload_bytes=len(row.payload),
            payload_encoding=encoding,
            payload=shown,
            payload_truncated=truncated,
        )


def _printable(payload: bytes) -> str | None:
    """The payload as text, or ``None`` when it is not UTF-8 or holds control characters."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ch < " " and ch not in "\t\r\n" for ch in text):
        return None
    return text


class QuarantineListOut(_Out):
    """Refused messages, newest first."""

    items: list[QuarantineOut]
