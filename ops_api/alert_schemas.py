"""Request and response models of the alert routes and the live feed (pydantic at the edge).

Times serialise as ISO 8601 UTC (``...Z``); the times a person reads also come as
``*_local`` in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from contract import QUANTITIES, Quantity, display_unit, local_iso
from ops_api.alert_queries import AlertRecord
from ops_api.params import Text
from ops_api.timefmt import UtcDatetime, maybe_local
from processing.alerts import AlertAction, AlertEvent, AlertState, Severity

__all__ = [
    "ActionIn",
    "ActionOut",
    "AlertDetailOut",
    "AlertEventOut",
    "AlertListOut",
    "AlertOut",
    "CommentIn",
]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class AlertEventOut(_Out):
    """One audit-trail event of an alert."""

    event_id: int
    alert_id: int
    at: UtcDatetime
    at_local: str
    action: AlertAction
    actor: str
    severity: Severity | None
    value: float | None
    note: str | None

    @classmethod
    def from_event(cls, event: AlertEvent) -> Self:
        """Build from an :class:`~processing.alerts.AlertEvent`."""
        return cls(
            event_id=event.event_id,
            alert_id=event.alert_id,
            at=event.at,
            at_local=local_iso(event.at),
            action=event.action,
            actor=event.actor,
            severity=event.severity,
            value=event.value,
            note=event.note,
        )


class AlertOut(_Out):
    """An alert as operators and subscribers see it."""

    alert_id: int
    dedup_key: str
    rule: str
    category: Literal["event", "sensor_health"]
    severity: Severity
    severity_rank: int = Field(description="0 (info) .. 4 (extreme)")
    severity_vi: str
    state: AlertState
    station_id: str | None
    quantity: str | None
    domain: str | None
    district: str | None
    title_vi: str
    title_en: str
    message_vi: str
    message_en: str
    value: float | None
    threshold: float | None
    unit: str | None
    unit_display: str | None = Field(description="the unit as people read it: µg/m³, °C, cm")
    observed_at: UtcDatetime
    observed_at_local: str
    raised_at: UtcDatetime
    raised_at_local: str
    updated_at: UtcDatetime
    acknowledged_at: UtcDatetime | None
    acknowledged_by: str | None
    cleared_at: UtcDatetime | None
    cleared_by: str | None
    cleared_at_local: str | None
    escalation_level: int
    incident_id: int | None
    last_event_id: int | None
    details: dict[str, JsonValue]

    @classmethod
    def from_record(cls, record: AlertRecord) -> Self:
        """Build from a stored alert."""
        alert = record.alert
        unit = None
        if alert.quantity is not None and alert.quantity in Quantity.__members__.values():
            unit = QUANTITIES[Quantity(alert.quantity)].unit
        return cls(
            alert_id=record.alert_id,
            dedup_key=alert.dedup_key,
            rule=alert.rule,
            category=alert.category,
            severity=alert.severity,
            severity_rank=alert.severity.rank,
            severity_vi=alert.severity.label_vi,
            state=alert.state,
            station_id=alert.station_id,
            quantity=alert.quantity,
            domain=alert.domain,
            district=alert.district,
            title_vi=alert.title_vi,
            title_en=alert.title_en,
            message_vi=alert.message_vi,
            message_en=alert.message_en,
            value=alert.value,
            threshold=alert.threshold,
            unit=unit,
            unit_display=None if unit is None else display_unit(unit),
            observed_at=alert.observed_at,
            observed_at_local=local_iso(alert.observed_at),
            raised_at=record.raised_at,
            raised_at_local=local_iso(record.raised_at),
            updated_at=record.updated_at,
            acknowledged_at=record.acknowledged_at,
            acknowledged_by=record.acknowledged_by,
            cleared_at=record.cleared_at,
            cleared_by=record.cleared_by,
            cleared_at_local=maybe_local(record.cleared_at),
            escalation_level=record.escalation_level,
            incident_id=record.incident_id,
            last_event_id=record.last_event_id,
            details=dict(alert.details),
        )


class AlertDetailOut(AlertOut):
    """An alert with its whole audit trail."""

    events: list[AlertEventOut]


class AlertListOut(_Out):
    """A page of alerts and the event id to resume the live feed from."""

    alerts: list[AlertOut]
    last_event_id: int = Field(
        description="newest event id when the list was read: subscribe with resume_from=it"
    )


class ActionIn(BaseModel):
    """Body of acknowledge/clear (optional)."""

    model_config = ConfigDict(extra="forbid")

    note: Text | None = Field(default=None, max_length=2000)


class CommentIn(BaseModel):
    """Body of a comment."""

    model_config = ConfigDict(extra="forbid")

    note: Text = Field(min_length=1, max_length=2000)


class ActionOut(_Out):
    """The alert after an operator action, and the event that recorded it."""

    alert: AlertOut
    event: AlertEventOut
