"""Validation of decoded messages against the registry and the clock (pure, no I/O).

Decoding (:mod:`ingest.wire`) checks the contract; this module checks what needs context:
the station and sensor must be registered and belong to the topic's domain, the measurement
time must lie within the configured window around the arrival time, and a value outside the
sensor's plausible range is stored with :data:`QUALITY_SUSPECT` rather than refused.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from ingest.consumer import RawMessage
from ingest.registry import RegistrySnapshot
from ingest.wire import (
    DEFAULT_ROOT,
    PayloadError,
    Reading,
    Rejection,
    StatusMessage,
    Topic,
    decode_status,
    decode_telemetry,
)

__all__ = [
    "QUALITY_GOOD",
    "QUALITY_SUSPECT",
    "Outcome",
    "Quarantined",
    "Row",
    "Validator",
    "storable",
]

QUALITY_GOOD: Final = 0
QUALITY_SUSPECT: Final = 1

Row = tuple[datetime, int, float, int, datetime]
"""One row for ``readings``: (time, sensor_id, value, quality, received_at)."""


@dataclass(frozen=True, slots=True)
class Quarantined:
    """Readings of one message refused for one reason (one quarantine row)."""

    reason: str
    detail: str
    station_id: str | None
    quantity: str | None
    readings: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything one message turned into."""

    message: RawMessage
    rows: tuple[Row, ...] = ()
    readings: tuple[Reading, ...] = ()
    quarantined: tuple[Quarantined, ...] = ()
    status: StatusMessage | None = None

    @property
    def records(self) -> int:
        """Accounting units: each reading, or 1 for a message that could not be split."""
        return len(self.rows) + sum(q.readings for q in self.quarantined)


class Validator:
    """Turns raw messages into rows, status changes and quarantine entries.

    Args:
        registry: the registry snapshot to check against (replace with :meth:`use`).
        root: topic root.
        max_future_s: how far ahead of arrival a measurement time may be.
        max_age_s: how far behind arrival a measurement time may be (backfill window).
    """

    def __init__(
        self,
        registry: RegistrySnapshot,
        *,
        root: str = DEFAULT_ROOT,
        max_future_s: float = 300.0,
        max_age_s: float = 400 * 86400.0,
    ) -> None:
        self._registry = registry
        self._root = root
        self._max_future = timedelta(seconds=max_future_s)
        self._max_age = timedelta(seconds=max_age_s)

    def use(self, registry: RegistrySnapshot) -> None:
        """Switch to a newer registry snapshot."""
        self._registry = registry

    def check(self, message: RawMessage) -> Outcome:
        """Validate one message; never raises for bad input."""
        try:
            topic = Topic.parse(message.topic, self._root)
            if topic.kind == "status":
                status = decode_status(topic, message.payload, message.received_at)
                if status.station_id not in self._registry.stations:
                    msg = f"station {status.station_id!r} is not registered"
                    raise PayloadError("unknown_station", msg)
                if status.reason is not None:
                    status = replace(status, reason=storable(status.reason))
                return Outcome(message, status=status)
            decoded = decode_telemetry(topic, message.payload, message.received_at)
        except PayloadError as exc:
            station = _station_from_topic(message.topic)
            return Outcome(
                message, quarantined=(Quarantined(exc.reason, exc.detail, station, None, 1),)
            )
        rows: list[Row] = []
        accepted: list[Reading] = []
        refused = list(decoded.rejections)
        for reading in decoded.readings:
            rejection = self._check_reading(topic, reading)
            if rejection is not None:
                refused.append(rejection)
                continue
            ref = self._registry.sensors[(reading.station_id, reading.quantity)]
            quality = QUALITY_GOOD if ref.is_plausible(reading.value) else QUALITY_SUSPECT
            rows.append(
                (reading.measured_at, ref.sensor_id, reading.value, quality, reading.received_at)
            )
            accepted.append(reading)
        return Outcome(message, tuple(rows), tuple(accepted), _group(refused))

    def _check_reading(self, topic: Topic, reading: Reading) -> Rejection | None:
        station = self._registry.stations.get(reading.station_id)
        sid, q = reading.station_id, reading.quantity.value
        if station is None:
            return Rejection("unknown_station", f"station {sid!r} is not registered", sid, q)
        if station.domain is not topic.domain:
            detail = f"station {sid!r} is a {station.domain} station, topic says {topic.domain}"
            return Rejection("domain_mismatch", detail, sid, q)
        if self._registry.sensor(sid, reading.quantity) is None:
            return Rejection("unknown_sensor", f"station {sid!r} has no {q} sensor", sid, q)
        lag = reading.received_at - reading.measured_at
        if -lag > self._max_future:
            detail = f"{q} measured {-lag.total_seconds():.0f} s in the future"
            return Rejection("future_time", detail, sid, q)
        if lag > self._max_age:
            detail = f"{q} measured {lag.total_seconds() / 86400:.1f} days ago"
            return Rejection("stale_time", detail, sid, q)
        return None


def _group(rejections: list[Rejection]) -> tuple[Quarantined, ...]:
    """One quarantine entry per reason, counting the readings it covers."""
    if not rejections:
        return ()
    counts = Counter(r.reason for r in rejections)
    first: dict[str, Rejection] = {}
    for r in rejections:
        first.setdefault(r.reason, r)
    out = []
    for reason, n in counts.items():
        r = first[reason]
        detail = r.detail if n == 1 else f"{r.detail} (and {n - 1} more)"
        out.append(
            Quarantined(
                reason, storable(detail) or "", storable(r.station_id), storable(r.quantity), n
            )
        )
    return tuple(out)


def storable(value: str | None) -> str | None:
    """Untrusted text made storable (NUL written as a visible escape).

    PostgreSQL text cannot hold U+0000: one such string would fail its batch for ever.
    """
    return None if value is None else value.replace("\x00", "\\u0000")


def _station_from_topic(topic: str) -> str | None:
    parts = topic.split("/")
    return parts[-2][:64] if len(parts) >= 3 else None
