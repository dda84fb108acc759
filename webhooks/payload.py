"""The body of a delivery: one alert event and the alert as that event left it (pure).

The outbox keeps a snapshot of the ``alerts`` and ``alert_events`` rows taken by the trigger
in the event's transaction; this renders it as the JSON document receivers get (UTF-8,
compact). Times are UTC (``…Z``) with a Hanoi-time twin (``*_local``, ``+07:00``), as on the
REST API. The same snapshot always renders the same bytes, so every attempt of a delivery
sends the same body (only the timestamp and signature headers change).

A body larger than the bound is sent without the alert's ``details`` (``details_omitted``:
true); one still too large is not sent at all (the delivery is dead, with the reason).

>>> snap = {"event": {"event_id": 7, "alert_id": 3, "action": "raised",
...                   "at": "2026-07-01T01:02:03.5+00:00", "actor": "processing",
...                   "severity": "severe", "value": 34.0, "note": None},
...         "alert": {"alert_id": 3, "rule": "flood_depth", "severity": "severe",
...                   "raised_at": "2026-07-01T01:02:03+00:00", "details": {"a": 1}}}
>>> body = render(snap, uuid.UUID(int=1), max_bytes=4096)
>>> doc = json.loads(body)
>>> doc["type"], doc["event"]["at"], doc["event"]["at_local"], doc["alert"]["details"]
('alert.raised', '2026-07-01T01:02:03.500000Z', '2026-07-01T08:02:03.500000+07:00', {'a': 1})
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from contract.clock import local_iso, utc_iso

__all__ = ["event_type", "render"]

_EVENT_FIELDS: Final = ("event_id", "action", "at", "actor", "severity", "value", "note")
_ALERT_FIELDS: Final = (
    "alert_id", "rule", "category", "severity", "state", "station_id", "quantity", "domain",
    "district", "title_vi", "title_en", "message_vi", "message_en", "value", "threshold",
    "observed_at", "raised_at", "updated_at", "acknowledged_at", "acknowledged_by",
    "cleared_at", "cleared_by", "escalation_level", "incident_id",
)  # fmt: skip
_TIMES: Final = frozenset(
    {"at", "observed_at", "raised_at", "updated_at", "acknowledged_at", "cleared_at"}
)


def event_type(snapshot: Mapping[str, object]) -> str:
    """``alert.<action>`` of a snapshot (the ``X-Hanoi-Event`` header)."""
    event = snapshot.get("event")
    action = event.get("action") if isinstance(event, dict) else None
    return f"alert.{action if isinstance(action, str) else 'unknown'}"


def render(
    snapshot: Mapping[str, object], delivery_id: uuid.UUID, *, max_bytes: int
) -> bytes | None:
    """The body of a delivery, or None when it cannot be made small enough."""
    event = _section(snapshot, "event", _EVENT_FIELDS)
    alert = _section(snapshot, "alert", _ALERT_FIELDS)
    raw_alert = snapshot.get("alert")
    details = raw_alert.get("details") if isinstance(raw_alert, dict) else None
    doc: dict[str, object] = {
        "type": event_type(snapshot),
        "delivery_id": str(delivery_id),
        "event": event,
        "alert": {**alert, "details": details if isinstance(details, dict) else {}},
    }
    body = _encode(doc)
    if len(body) <= max_bytes:
        return body
    doc["alert"] = {**alert, "details": None, "details_omitted": True}
    body = _encode(doc)
    return body if len(body) <= max_bytes else None


def _section(
    snapshot: Mapping[str, object], name: str, fields: tuple[str, ...]
) -> dict[str, object]:
    raw = snapshot.get(name)
    row: Mapping[str, object] = raw if isinstance(raw, dict) else {}
    out: dict[str, object] = {}
    for key in fields:
        value = row.get(key)
        if key in _TIMES:
            moment = _moment(value)
            out[key] = None if moment is None else utc_iso(moment)
            out[f"{key}_local"] = None if moment is None else local_iso(moment)
        else:
            out[key] = value
    return out


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else None


def _encode(doc: Mapping[str, object]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
