"""Alerts: the typed value, severities, states and actions.

An :class:`Alert` is what processing raises and what the ops API serves; the database row
(``alerts`` table) is its durable form and every transition is an ``alert_events`` row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Literal

__all__ = ["Alert", "AlertAction", "AlertEvent", "AlertState", "Category", "Severity"]


class Severity(StrEnum):
    """Alert severity, aligned with CAP 1.2 (``info`` has no CAP equivalent)."""

    INFO = "info"
    MINOR = "minor"
    MODERATE = "moderate"
    SEVERE = "severe"
    EXTREME = "extreme"

    @property
    def rank(self) -> int:
        """Order for comparisons and minimum-severity filters."""
        return _RANK[self]

    @property
    def label_vi(self) -> str:
        """Vietnamese label for operators."""
        return _LABEL_VI[self]

    @property
    def cap(self) -> str:
        """The CAP 1.2 ``severity`` value."""
        return "Unknown" if self is Severity.INFO else self.value.capitalize()


class _Rank(IntEnum):
    INFO = 0
    MINOR = 1
    MODERATE = 2
    SEVERE = 3
    EXTREME = 4


_RANK = {s: _Rank[s.name].value for s in Severity}
_LABEL_VI = {
    Severity.INFO: "Thông tin",
    Severity.MINOR: "Nhẹ",
    Severity.MODERATE: "Trung bình",
    Severity.SEVERE: "Nghiêm trọng",
    Severity.EXTREME: "Cực kỳ nghiêm trọng",
}


class AlertState(StrEnum):
    """Lifecycle states: raise -> acknowledge -> clear."""

    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class AlertAction(StrEnum):
    """Transitions recorded in the audit trail (``alert_events``)."""

    RAISED = "raised"
    UPDATED = "updated"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"
    ESCALATED = "escalated"
    COMMENTED = "commented"
    REOPENED = "reopened"


Category = Literal["event", "sensor_health", "operations"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as raised by a rule, before or after it is stored.

    Args:
        dedup_key: identifies "the same situation" (e.g. ``flood_depth:fd-thai-ha``); at most
            one open alert per key.
        rule: the rule that raised it.
        category: ``event`` (something in the city) or ``sensor_health``.
        severity: how bad.
        station_id: the station concerned, if any.
        quantity: the quantity concerned, if any.
        domain: the station's domain.
        district: the station's district (used for grouping into incidents).
        title_vi: short Vietnamese title.
        title_en: short English title.
        message_vi: Vietnamese text for operators (times in Asia/Ho_Chi_Minh).
        message_en: English text.
        value: the observed value that triggered it.
        threshold: the threshold crossed.
        observed_at: tz-aware UTC measurement time.
        details: extra structured facts (level names, nowcast minutes, ...).
        alert_id: database id once stored.
        state: lifecycle state.
    """

    dedup_key: str
    rule: str
    category: Category
    severity: Severity
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
    observed_at: datetime
    details: dict[str, str | float | int | bool | None] = field(default_factory=dict)
    alert_id: int | None = None
    state: AlertState = AlertState.RAISED


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One row of the audit trail, as announced to live clients."""

    event_id: int
    alert_id: int
    at: datetime
    action: AlertAction
    actor: str
    severity: Severity | None = None
    value: float | None = None
    note: str | None = None
