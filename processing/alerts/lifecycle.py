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
- **Follow**: a condition that carries a :class:`~processing.alerts.wording.Figure` (the
  public rules with a measured value: flood depth, rain, VN_AQI, lake water) keeps its open
  alert current: the alert also gets an update when its value has moved by the figure's
  ``step`` or its trend (rising, falling, steady over ``trend_window_s``) has changed, at
  most once per ``follow_every_s`` of event time. Such an update keeps the severity (the
  peak's) and says the current value and trend beside the peak ("Độ sâu ngập … hiện tại
  9,8 cm (đang giảm) …, đỉnh 50,1 cm lúc 04:23"); its details carry ``current_value``,
  ``trend``, ``peak_value`` and ``peak_at``. After a restart it goes on from the alert as
  stored (:meth:`Lifecycle.resume_following`): its texts, value and recorded peak.

Everything runs in **event time** (the conditions' ``at``), never the wall clock, so
a fast backfill gives the same alerts as the live stream did. Each alert's ``details`` carry
the event times of its transitions — ``raised_observed_at`` and ``first_<severity>_at`` for
each severity it reached — because the ``observed_at`` column follows the latest update.

Acknowledgement and escalation are done by people and by time, in the database
(:mod:`processing.alerts.sink`); this module only reacts to measurements.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from contract import Station
from processing.alerts import Alert, Severity
from processing.alerts.wording import Figure, Trend, progress_texts
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
    follow: _Follow | None = None  # None: not followed (no figure yet)
    stored: Alert | None = None  # the alert as stored, for a track restored after a restart


@dataclass(slots=True)
class _Follow:
    """What an open alert's updates follow: its figure, peak, recent values, last text."""

    figure: Figure
    alert: Alert  # the alert as last published
    peak: tuple[float, datetime]
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=256))
    trend: Trend = Trend.STEADY
    published_s: float = 0.0  # event time of the alert as last published (epoch s)

    def __post_init__(self) -> None:
        self.published_s = self.alert.observed_at.timestamp()

    def publish(self, alert: Alert, trend: Trend) -> None:
        """Note the alert as now published."""
        self.alert, self.trend, self.published_s = alert, trend, alert.observed_at.timestamp()

    def record(self, value: float, at: datetime, at_s: float, window_s: float) -> None:
        """Note a value (and the peak), keeping the window's values and the one before."""
        recent = self.recent
        while len(recent) > 1 and at_s - recent[1][0] > window_s:
            recent.popleft()
        recent.append((at_s, value))
        if (value > self.peak[0]) if self.figure.higher_is_worse else (value < self.peak[0]):
            self.peak = (value, at)

    def fitted_trend(self) -> Trend:
        """The trend of the recorded values: the least-squares change across the window.

        A peak that has passed does not make a falling value look like a rise, and one
        noisy reading does not make a trend.
        """
        return Trend.of(_fitted_change(self.recent), self.figure.step / 2)

    def is_news(self, value: float, trend: Trend) -> bool:
        """True when the value moved by a step since the last update, or the trend changed."""
        last = self.alert.value
        return last is None or abs(value - last) >= self.figure.step or trend is not self.trend


def _fitted_change(points: Collection[tuple[float, float]]) -> float:
    """The change a least-squares line through (time, value) points makes across them.

    >>> _fitted_change([(0.0, 50.0), (60.0, 48.0), (120.0, 46.0)])
    -4.0
    """
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread
    times = [t for t, _ in points]
    return slope * (max(times) - min(times))


class Lifecycle:
    """Per-dedup-key state machine.

    Args:
        clear_after: consecutive normal readings needed to clear.
        cooldown_s: quiet time after a clear before the same key is raised again.
        follow_every_s: shortest event time between two updates that follow an open
            alert's value (conditions with a figure).
        trend_window_s: the window a trend is judged over.
    """

    def __init__(
        self,
        *,
        clear_after: int = 3,
        cooldown_s: float = 600.0,
        follow_every_s: float = 600.0,
        trend_window_s: float = 600.0,
    ) -> None:
        self._clear_after = clear_after
        self._cooldown = timedelta(seconds=cooldown_s)
        self._follow_every_s = follow_every_s
        self._trend_window_s = trend_window_s
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

    def resume_following(self, alerts: Iterable[Alert]) -> None:
        """Give restored open tracks their alerts as stored, so their updates follow on."""
        for alert in alerts:
            track = self._tracks.get(alert.dedup_key)
            if track is not None and track.is_open and track.follow is None:
                track.stored = alert

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
            return self._followed(cond, track)
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
                return self._followed(cond, track)
            track.severity = severity
            track.first_at.setdefault(f"first_{severity.value}_at", iso_utc(when))
            return Update(self._published(cond, track, self._alert(cond, station, track)))
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
        alert = self._published(cond, track, self._alert(cond, station, track))
        return Raise(alert, cond.group or cond.rule)

    def _published(self, cond: Condition, track: _Track, alert: Alert) -> Alert:
        """The alert of a raise or a worsening, with what following it needs."""
        if cond.figure is None:
            return alert
        follow = self._follow_of(track, cond) or _Follow(cond.figure, alert, (cond.value, cond.at))
        track.follow = follow
        follow.record(cond.value, cond.at, cond.at.timestamp(), self._trend_window_s)
        trend = follow.fitted_trend()
        peak_value, peak_at = follow.peak
        alert.details.update(
            current_value=cond.value, trend=trend.value, peak_value=peak_value,
            peak_at=iso_utc(peak_at),
        )  # fmt: skip
        follow.figure = cond.figure
        follow.publish(alert, trend)
        return alert

    @staticmethod
    def _follow_of(track: _Track, cond: Condition) -> _Follow | None:
        """The track's follow; for a restored track, made from its stored alert."""
        if track.follow is not None or track.stored is None or cond.figure is None:
            return track.follow
        stored, track.stored = track.stored, None
        peak = (stored.value if stored.value is not None else cond.value, stored.observed_at)
        value, at = stored.details.get("peak_value"), stored.details.get("peak_at")
        if isinstance(value, int | float) and isinstance(at, str):
            peak = (float(value), datetime.fromisoformat(at.replace("Z", "+00:00")))
        track.follow = _Follow(cond.figure, stored, peak)
        return track.follow

    def _followed(self, cond: Condition, track: _Track) -> Update | None:
        """An update of an open alert that follows its value, when there is news."""
        follow = self._follow_of(track, cond)
        if follow is None:
            return None
        at_s = cond.at.timestamp()
        follow.record(cond.value, cond.at, at_s, self._trend_window_s)
        if follow.alert.value is None or at_s - follow.published_s < self._follow_every_s:
            return None
        trend = follow.fitted_trend()
        if not follow.is_news(cond.value, trend):
            return None
        message_vi, message_en = progress_texts(follow.figure, (cond.value, cond.at, trend),
                                                follow.peak)  # fmt: skip
        peak_value, peak_at = follow.peak
        details = {
            **follow.alert.details, "current_value": cond.value, "trend": trend.value,
            "peak_value": peak_value, "peak_at": iso_utc(peak_at),
        }  # fmt: skip
        alert = replace(
            follow.alert, message_vi=message_vi, message_en=message_en, value=cond.value,
            observed_at=cond.at, details=details,
        )  # fmt: skip
        follow.publish(alert, trend)
        return Update(alert)

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
