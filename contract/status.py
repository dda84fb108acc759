"""Device status: the retained online/offline messages, and when data counts as stale.

A device publishes its state, retained, on ``<root>/<domain>/<station>/status`` and sets
``offline`` as its MQTT last will. The device's word is one input; the age of its data is
the other: :class:`StaleRule` is the one definition of a *stale* station, used by ingest's
upkeep (which records the change), by the ops API (which shows it) and by processing's
silence watch (which alerts on it).

>>> from datetime import UTC, datetime, timedelta
>>> now = datetime(2026, 9, 30, 6, 0, tzinfo=UTC)
>>> rule = StaleRule(stale_factor=3.0, stale_min_s=60.0)
>>> rule.state("online", now - timedelta(hours=1), now - timedelta(seconds=30), 10.0, now)
'online'
>>> rule.state("online", now - timedelta(hours=1), now - timedelta(seconds=90), 10.0, now)
'stale'
>>> rule.state("offline", now - timedelta(minutes=5), now - timedelta(seconds=90), 10.0, now)
'offline'
>>> rule.state(None, None, None, 10.0, now)
'unknown'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import msgspec

from contract.errors import PayloadError
from contract.payload import check_size, to_utc
from contract.topic import StationId, Topic

__all__ = [
    "DEFAULT_STALE_FACTOR",
    "DEFAULT_STALE_MIN_S",
    "MAX_REASON_CHARS",
    "StaleRule",
    "StationStateName",
    "StatusMessage",
    "decode_status",
    "encode_status",
]

DEFAULT_STALE_FACTOR: Final = 3.0
"""A station is stale after this many of its shortest reporting interval without data..."""
DEFAULT_STALE_MIN_S: Final = 60.0
"""...but never sooner than this many seconds."""

_encoder: Final = msgspec.json.Encoder()


class StatusMessage(msgspec.Struct, frozen=True, gc=False):
    """A device's online/offline state as published on its retained status topic."""

    station_id: StationId
    online: bool
    at: datetime
    reason: str | None = None


class _StatusIn(msgspec.Struct, forbid_unknown_fields=True):
    state: Literal["online", "offline"]
    time: datetime | None = None
    reason: str | None = None
    station: str | None = None  # when given, it must be the topic's station


MAX_REASON_CHARS: Final = 200
"""A device's free-text reason is kept to this many characters."""


_status_decoder: Final = msgspec.json.Decoder(_StatusIn)


def encode_status(online: bool, at: datetime | None = None, reason: str | None = None) -> bytes:
    """Encode a status payload; the last will is encoded without a time."""
    body: dict[str, object] = {"state": "online" if online else "offline"}
    if at is not None:
        body["time"] = to_utc(at)
    if reason:
        body["reason"] = reason
    return _encoder.encode(body)


def decode_status(topic: Topic, payload: bytes, received_at: datetime) -> StatusMessage:
    """Decode a status payload: ``online``/``offline`` or the JSON form of :func:`encode_status`.

    A status speaks for the topic's station only (a ``station`` field naming another is
    refused); a status without a time (the last will) is dated by its arrival. Whether the
    station is registered, in the topic's domain, and the time within the accepted window is
    the validator's business, as for telemetry.

    Raises:
        PayloadError: when it is neither, names another station, or its time is unusable.
    """
    check_size(payload)
    text = payload.strip()
    if text in (b"online", b"offline"):
        return StatusMessage(topic.station_id, text == b"online", received_at)
    try:
        status = _status_decoder.decode(text)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise PayloadError("schema", f"status: {exc}") from None
    if status.station is not None and status.station != topic.station_id:
        msg = f"status names station {status.station!r} on the topic of {topic.station_id!r}"
        raise PayloadError("station_mismatch", msg)
    at = to_utc(status.time) if status.time is not None else received_at
    reason = status.reason
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    return StatusMessage(topic.station_id, status.state == "online", at, reason)


StationStateName = Literal["online", "offline", "stale", "unknown"]


@dataclass(frozen=True, slots=True)
class StaleRule:
    """When a station's data counts as stale.

    Args:
        stale_factor: stale after this many of its shortest reporting interval.
        stale_min_s: but never sooner than this.
    """

    stale_factor: float = DEFAULT_STALE_FACTOR
    stale_min_s: float = DEFAULT_STALE_MIN_S

    def threshold_s(self, interval_s: float | None) -> float:
        """Seconds of silence after which a station with this interval is stale."""
        if interval_s is None:
            return self.stale_min_s
        return max(self.stale_min_s, self.stale_factor * interval_s)

    def state(
        self,
        reported: str | None,
        since: datetime | None,
        last_received: datetime | None,
        interval_s: float | None,
        now: datetime,
    ) -> StationStateName:
        """The effective state (see the module docstring)."""
        fresh = last_received is not None and (
            now - last_received
        ).total_seconds() <= self.threshold_s(interval_s)
        if reported == "offline":
            came_back = last_received is not None and (since is None or last_received > since)
            return "online" if fresh and came_back else "offline"
        if fresh:
            return "online"
        if last_received is not None:
            return "stale"
        if reported in ("online", "stale"):
            return "online" if reported == "online" else "stale"
        return "unknown"
