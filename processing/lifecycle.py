"""The alert lifecycle (pure): conditions -> raise / update / clear commands.

- **Raise** when a rule reaches a level and no alert is open for the dedup key.
- **Update** when an open alert's situation gets worse (severity only ever rises while open,
  so a value hovering around a threshold does not flap).
- **Clear** after ``clear_after`` consecutive normal readings (normal = back past the mildest
  threshold by the rule's hysteresis).
- **Cooldown**: after a clear, the same key is not raised again at the same or a lower
  severity for ``cooldown_s`` of measurement time; a worse situation raises at once.
- Readings older than the newest one seen for a key are ignored (out-of-order delivery).

Acknowledgement and escalation are done by people and by time, in the database
(:mod:`processing.sink`); this module only reacts to measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.registry import StationRef
from processing.alerts import Alert, Severity
from processing.rules import Condition

__all__ = ["Clear", "Command", "Lifecycle", "Raise", "Update"]


@dataclass(frozen=True, slots=True)
class Raise:
    """Open a new alert."""

    alert: Alert
    group_key: str


@dataclass(frozen=True, slots=True)
class Update:
    """An open alert got worse."""

    alert: Alert


@dataclass(frozen=True, slots=True)
class Clear:
    """An open alert's situation is over."""

    dedup_key: str
    value: float
    observed_at: datetime
    note: str


Command = Raise | Update | Clear


@dataclass(slots=True)
class _Track:
    severity: Severity
    is_open: bool
    last_seen: datetime
    normal_streak: int = 0
    cleared_at: datetime | None = None


class Lifecycle:
    """Per-dedup-key state machine.

    Args:
        clear_after: consecutive normal readings needed to clear.
        cooldown_s: quiet time after a clear before the same key is raised again.
    """

    def __init__(self, *, clear_after: int = 3, cooldown_s: float = 600.0) -> None:
        self._clear_after = clear_after
        self._cooldown = timedelta(seconds=cooldown_s)
        self._tracks: dict[str, _Track] = {}
        self.suppressed = 0

    def restore(self, open_alerts: list[tuple[str, Severity, datetime]]) -> None:
        """Resume after a restart from the alerts still open in the database."""
        for key, severity, observed_at in open_alerts:
            self._tracks[key] = _Track(severity, True, observed_at)

    def forget(self, dedup_key: str) -> None:
        """Drop a key whose alert was closed by someone else (e.g. cleared by an operator)."""
        track = self._tracks.get(dedup_key)
        if track is not None:
            track.is_open = False

    @property
    def open_keys(self) -> set[str]:
        """Dedup keys with an open alert."""
        return {k for k, t in self._tracks.items() if t.is_open}

    def step(self, cond: Condition, station: StationRef | None) -> Command | None:
        """Feed one condition; returns what to do, if anything.

        Args:
            cond: the condition.
            station: the station (for the alert's domain and district), if registered.
        """
        reading = cond.reading
        track = self._tracks.get(cond.dedup_key)
        if track is not None and reading.measured_at < track.last_seen:
            return None
        if track is not None:
            track.last_seen = reading.measured_at
        if cond.severity is not None:
            return self._abnormal(cond, track, station)
        if track is None or not track.is_open:
            return None
        track.normal_streak = track.normal_streak + 1 if cond.normal else 0
        if track.normal_streak < self._clear_after:
            return None
        track.is_open = False
        track.cleared_at = reading.measured_at
        note = (
            f"Trở lại bình thường sau {self._clear_after} lần đo / "
            f"back to normal for {self._clear_after} readings"
        )
        return Clear(cond.dedup_key, reading.value, reading.measured_at, note)

    def _abnormal(
        self, cond: Condition, track: _Track | None, station: StationRef | None
    ) -> Command | None:
        assert cond.severity is not None  # noqa: S101 - checked by the caller
        severity = cond.severity
        when = cond.reading.measured_at
        if track is not None and track.is_open:
            track.normal_streak = 0
            if severity.rank <= track.severity.rank:
                return None
            track.severity = severity
            return Update(self._alert(cond, station))
        if (
            track is not None
            and track.cleared_at is not None
            and when - track.cleared_at < self._cooldown
            and severity.rank <= track.severity.rank
        ):
            self.suppressed += 1
            return None
        self._tracks[cond.dedup_key] = _Track(severity, True, when)
        return Raise(self._alert(cond, station), cond.group or cond.rule)

    @staticmethod
    def _alert(cond: Condition, station: StationRef | None) -> Alert:
        assert cond.severity is not None  # noqa: S101
        title_vi, title_en, message_vi, message_en = cond.texts
        return Alert(
            dedup_key=cond.dedup_key,
            rule=cond.rule,
            category=cond.category,
            severity=cond.severity,
            station_id=cond.reading.station_id,
            quantity=cond.reading.quantity.value,
            domain=station.domain.value if station else None,
            district=station.district if station else None,
            title_vi=title_vi,
            title_en=title_en,
            message_vi=message_vi,
            message_en=message_en,
            value=cond.reading.value,
            threshold=cond.threshold,
            observed_at=cond.reading.measured_at,
            details=cond.details,
        )
