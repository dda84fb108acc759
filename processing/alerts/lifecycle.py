"""The alert lifecycle (pure): conditions -> raise / update / clear commands.

- **Raise** when a rule reaches a level and no alert is open for the dedup key.
- **Update** when an open alert's situation gets worse (severity only ever rises while open,
  so a value hovering around a threshold does not flap).
- **Clear** after ``clear_after`` consecutive normal readings (normal = back past the mildest
  threshold by the rule's hysteresis).
- **Cooldown**: after a clear, the same key is not raised again at the same or a lower
  severity for ``cooldown_s`` of measurement time; a worse situation raises at once.
- **Hold**: an abnormal condition marked ``hold`` (a reading the spike lane flagged as an
  isolated outlier) is acted upon only if the key's next condition is abnormal too; a single
  glitch never raises, updates or escalates an event alert (the spike lane reports it as a
  sensor-health matter instead). This costs one reading of delay, and only on such readings.
  A *raise* may ask for more (``confirm``): threshold rules want two consecutive readings at
  a level, so noise grazing a threshold raises nothing; a sensor-health lane judging a slow
  fault (drift against the neighbours) wants its verdict to persist for several readings;
  an open alert follows every reading.
- Readings older than the newest one seen for a key are ignored (out-of-order delivery).
- **Restart**: the lifecycle resumes from the database, from the open alerts and from the
  last cleared alert of every other key (:meth:`Lifecycle.restore`): conditions older than
  what was decided for a key are ignored, and its cooldown goes on, so a feed replayed from
  an older snapshot, or late readings of an event already decided and cleared, raise no
  second alert for it.

Everything runs in **event time** (the conditions' ``at``), never the wall clock, so
a fast backfill gives the same alerts as the live stream did. Each alert's ``details`` carry
the event times of its transitions — ``raised_observed_at`` and ``first_<severity>_at`` for
each severity it reached — because the ``observed_at`` column follows the latest update.

Acknowledgement and escalation are done by people and by time, in the database
(:mod:`processing.alerts.sink`); this module only reacts to measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from contract import Station
from processing.alerts import Alert, Severity
from processing.conditions.base import Condition

__all__ = [
    "Clear",
    "Command",
    "DecidedAlert",
    "Lifecycle",
    "OpenAlert",
    "Raise",
    "Update",
    "iso_utc",
]

OpenAlert = tuple[str, Severity, datetime]
"""An open alert: dedup key, severity, observation time."""
DecidedAlert = tuple[str, Severity, datetime, datetime | None]
"""A cleared alert: dedup key, severity, last event time decided on, event time of its clear."""


def iso_utc(moment: datetime) -> str:
    """``2025-09-30T02:10:00Z``: how event times are written into alert details."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
    raised_at: datetime | None = None  # unknown for alerts restored after a restart
    first_at: dict[str, str] = field(default_factory=dict)


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
        self._held: dict[str, tuple[datetime, int]] = {}  # first held, how many
        self.suppressed = 0
        self.held_glitches = 0

    def reset(self, open_alerts: list[OpenAlert], decided: Sequence[DecidedAlert] = ()) -> None:
        """Forget every track and hold, and go on from the alerts in the database.

        (After a step whose transitions were never committed: the database is the truth.)
        """
        self._tracks.clear()
        self._held.clear()
        self.restore(open_alerts, decided)

    def restore(self, open_alerts: list[OpenAlert], decided: Sequence[DecidedAlert] = ()) -> None:
        """Resume after a restart from the alerts in the database.

        Args:
            open_alerts: key, severity and observation time of each open alert.
            decided: key, severity, last event time decided on and event time of the
                clear (None: cleared by an operator, no cooldown) of each key's last
                cleared alert (:func:`processing.alerts.sink.decided_alerts`).
        """
        for key, severity, seen, cleared_at in decided:
            self._tracks[key] = _Track(severity, False, seen, cleared_at=cleared_at)
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

    @property
    def held_keys(self) -> set[str]:
        """Dedup keys whose last abnormal condition waits for confirmation."""
        return set(self._held)

    @property
    def watched_keys(self) -> set[str]:
        """Keys whose *normal* conditions matter: open alerts and held conditions."""
        return self.open_keys | self.held_keys

    def step(self, cond: Condition, station: Station | None) -> Command | None:
        """Feed one condition; returns what to do, if anything.

        Args:
            cond: the condition.
            station: the station (for the alert's domain and district), if registered.
        """
        track = self._tracks.get(cond.dedup_key)
        if track is not None and cond.at < track.last_seen:
            return None
        if cond.severity is not None and self._holds(cond, track):
            return None
        if cond.severity is None and self._held.pop(cond.dedup_key, None) is not None:
            self.held_glitches += 1  # the held reading was a glitch: nothing to act on
        if track is not None:
            track.last_seen = cond.at
        if cond.severity is not None:
            return self._abnormal(cond, track, station)
        if track is None or not track.is_open:
            return None
        track.normal_streak = track.normal_streak + 1 if cond.normal else 0
        needed = cond.clear_after or self._clear_after
        if track.normal_streak < needed:
            return None
        track.is_open = False
        track.cleared_at = cond.at
        note = (
            f"Trở lại bình thường sau {needed} lần đo / back to normal for {needed} readings"
            if cond.measured
            else "Trở lại bình thường / back to normal"
        )
        return Clear(cond.dedup_key, cond.value, cond.at, note)

    def _holds(self, cond: Condition, track: _Track | None) -> bool:
        """True when an abnormal condition waits for the next one to confirm it."""
        held = self._held.pop(cond.dedup_key, None)
        first, count = held if held is not None else (cond.at, 0)
        count += 1  # consecutive abnormal conditions, this one included
        needed = 2 if cond.hold else 1
        if not (track is not None and track.is_open):
            needed = max(needed, cond.confirm)
        if count < needed:
            self._held[cond.dedup_key] = (first, count)
            return True
        return False

    def _abnormal(
        self, cond: Condition, track: _Track | None, station: Station | None
    ) -> Command | None:
        assert cond.severity is not None  # noqa: S101 - checked by the caller
        severity = cond.severity
        when = cond.at
        if track is not None and track.is_open:
            track.normal_streak = 0
            if severity.rank <= track.severity.rank:
                return None
            track.severity = severity
            track.first_at.setdefault(f"first_{severity.value}_at", iso_utc(when))
            return Update(self._alert(cond, station, track))
        if (
            track is not None
            and track.cleared_at is not None
            and when - track.cleared_at < self._cooldown
            and severity.rank <= track.severity.rank
        ):
            self.suppressed += 1
            return None
        track = _Track(severity, True, when, raised_at=when)
        track.first_at[f"first_{severity.value}_at"] = iso_utc(when)
        self._tracks[cond.dedup_key] = track
        return Raise(self._alert(cond, station, track), cond.group or cond.rule)

    @staticmethod
    def _alert(cond: Condition, station: Station | None, track: _Track) -> Alert:
        assert cond.severity is not None  # noqa: S101
        title_vi, title_en, message_vi, message_en = cond.texts
        details = dict(cond.details)
        if track.raised_at is not None:
            details["raised_observed_at"] = iso_utc(track.raised_at)
        details.update(track.first_at)
        return Alert(
            dedup_key=cond.dedup_key,
            rule=cond.rule,
            category=cond.category,
            severity=cond.severity,
            station_id=cond.subject.station_id,
            quantity=None if cond.subject.quantity is None else cond.subject.quantity.value,
            domain=station.domain.value if station else None,
            district=station.district if station else None,
            title_vi=title_vi,
            title_en=title_en,
            message_vi=message_vi,
            message_en=message_en,
            value=cond.value,
            threshold=cond.threshold,
            observed_at=cond.at,
            details=details,
        )
