"""Scoring alerts against ground truth (pure): precision, recall and detection delay per kind.

The rules, in full — the report restates them so a reader can check every number:

1. **Compatible alerts.** Each label kind lists the alert rules that count as detecting it
   (:data:`KINDS`; e.g. a ``flood`` is detected by ``flood_depth``, ``flood_forecast`` or
   ``water_rising`` alerts). An alert can only match a label of the **same station** whose
   kind lists the alert's rule. A threshold rule may claim a kind only from one of its
   levels on: a ``low_oxygen`` alert claims an oxygen crash (or hypoxia) once it reached
   its fish-kill level (severe, < 2 mg/L); one that stayed at "below the permitted 4 mg/L"
   is an exceedance notice, neither a detection nor a false crash alarm (it is still listed
   among the alerts that matched no label).
2. **Time window.** An alert matches when it was *raised* (event time: the measurement time
   of the reading that raised it) within ``[start − early, end + late]`` of the label:
   ``early`` is the kind's early-warning allowance (an alert raised up to an hour before a
   flood starts is a forecast, not a false alarm), ``late`` is a few of the station's sample
   intervals after the label ended. An alert raised earlier that is still *open* when the
   label starts also matches, with delay 0 (one heavy-rain alert covering a storm's burst
   and then its tail: the operator already has it on screen). Alerts raised during the
   spin-up before the scenario and still open at its start are *carried over*: they may
   detect a label that way, but are never counted as false alarms.
3. **One detection per label.** The earliest matching alert detects the label; its
   **detection delay** is ``raised − start`` (negative: raised before the label started,
   i.e. an early warning), also given in the station's sample intervals. Further matching
   alerts are true but redundant (counted as ``duplicates``, not as false alarms). Overlapping
   labels can share an alert: one alert may detect several labels.
4. **False alarms.** An alert that matches *no* label of any kind is a false positive of
   every kind that lists its rule. An alert that matches a label of another kind is explained
   by it and is neither a true nor a false positive of this kind (a ``low_oxygen`` alert
   during a labelled hypoxia night is not a false oxygen-crash alarm). A kind may also list
   *related* rules: alerts that its labels explain (same station, same window) without
   detecting them — a dawn ``low_oxygen`` alert during a labelled algal bloom is the bloom's
   consequence, true but not a bloom detection.
5. **Precision** of a kind = its true alerts / (true + false alerts); **recall** = expected
   labels detected / expected labels. A label is *expected* unless it is too short for any
   detector to call (``min_span_intervals``: a dropout of two messages is not a silent
   sensor) or it concerns only quantities no detector of the kind watches (``quantities``,
   taken from the live lane configuration); unexpected labels are listed, and alerts
   matching them still count as true.
6. **Delays** are summarised over detected expected labels: median and 90th percentile
   (linear interpolation), in seconds and in sample intervals.
7. Kinds that ingest handles without alerting (duplicates, out-of-order, malformed messages,
   clock skew) are counted but not scored; kinds with no detector are reported as such.

>>> from datetime import UTC, datetime, timedelta
>>> from contract import StationId, TruthEvent
>>> from processing.alerts import Severity
>>> t0 = datetime(2025, 9, 30, tzinfo=UTC)
>>> flood = TruthEvent("f1", "demo", StationId("fd-a"), "flood", "event", t0,
...                    t0 + timedelta(hours=2))
>>> alert = AlertTimeline(1, "flood_depth", "event", "fd-a", "water_depth", Severity.MINOR,
...                     t0 + timedelta(minutes=1))
>>> score = score_alerts([flood], [alert], lambda station: 60.0)
>>> k = score.kind("flood")
>>> k.precision, k.recall, k.delay_median_intervals
(1.0, 1.0, 1.0)
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Final

import numpy as np

from contract import TruthEvent
from hanoi_ioc.evaluate.records import AlertTimeline
from processing.alerts import Severity
from processing.conditions.clock import CLOCK_RULE
from processing.conditions.dry_weather import DEPTH_WITHOUT_RAIN_RULE
from processing.conditions.forecasts import FORECAST_RULE
from processing.conditions.lanes import DEFAULT_LANES, SILENCE_LANE, SPIKE_LANE
from processing.conditions.registry import RULES
from processing.conditions.silence import SILENT_RULE

__all__ = [
    "KINDS",
    "SYSTEM_RULES",
    "UNSCORED",
    "KindScore",
    "KindSpec",
    "LabelOutcome",
    "Scoring",
    "percentile",
    "score_alerts",
]

_HOUR: Final = 3600.0

SYSTEM_RULES: Final = frozenset(RULES)
"""Every alert rule the live processing configuration can raise (processing's registry)."""


def _lane_quantities(*lanes: str) -> frozenset[str]:
    out: set[str] = set()
    for spec in DEFAULT_LANES:
        if spec.name in lanes and spec.quantities is not None:
            out |= {q.value for q in spec.quantities}
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class KindSpec:
    """How labels of one kind are matched.

    Args:
        kind: the label kind (``contract.TruthEvent.kind``).
        rules: alert rules that count as detecting it (empty: no detector).
        early_s: how long before the label start an alert may be raised and still count.
        late_intervals: how long after the label end, in the station's sample intervals.
        min_span_intervals: labels spanning less are not expected to be detected.
        quantities: labels concerning none of these are not expected (None: any).
        note: what the kind is, for the report.
        related: rules whose alerts a label of this kind explains without detecting it.
        min_severity: rules that claim the kind only from this severity on (a threshold
            rule whose mild level states something else: DO under the permitted 4 mg/L is
            an exceedance notice, under 2 mg/L "Nguy cơ cá chết / fish-kill danger").
    """

    kind: str
    rules: frozenset[str]
    early_s: float = 0.0
    late_intervals: float = 3.0
    min_span_intervals: float = 0.0
    quantities: frozenset[str] | None = None
    note: str = ""
    related: frozenset[str] = frozenset()
    min_severity: tuple[tuple[str, Severity], ...] = ()

    def claims(self, alert: AlertTimeline) -> bool:
        """Whether the alert claims this kind: its rule is listed, at a severity that does."""
        if alert.rule not in self.rules:
            return False
        floor = dict(self.min_severity).get(alert.rule)
        return floor is None or alert.severity.rank >= floor.rank


def _spec(
    kind: str,
    rules: Iterable[str],
    **kw: float | frozenset[str] | str | tuple[tuple[str, Severity], ...] | None,
) -> KindSpec:
    return KindSpec(kind, frozenset(rules), **kw)  # type: ignore[arg-type]


_FISH_KILL_LEVEL: Final = (("low_oxygen", Severity.SEVERE),)
"""``low_oxygen`` claims an oxygen crash from its fish-kill level (< 2 mg/L) on."""

KINDS: Final[Mapping[str, KindSpec]] = MappingProxyType(
    {
        s.kind: s
        for s in (
            _spec("flood", ("flood_depth", FORECAST_RULE, "water_rising"), early_s=_HOUR,
                  note="street flood ≥ 10 cm (until < 5 cm)"),
            _spec("oxygen_crash", ("oxygen_risk", "low_oxygen"), early_s=6 * _HOUR,
                  min_severity=_FISH_KILL_LEVEL,
                  note="West Lake bloom collapse and oxygen depletion"),
            _spec("hypoxia", ("oxygen_risk", "low_oxygen"), early_s=6 * _HOUR,
                  min_severity=_FISH_KILL_LEVEL,
                  note="dissolved oxygen < 2 mg/L (until > 3)"),
            _spec("pollution_episode", ("air_quality", "pm25_high", "pollution_unusual",
                                        "pollution_shift"),
                  early_s=_HOUR, note="scripted PM episode"),
            _spec("heavy_rain", ("heavy_rain",), early_s=0.0, note="scripted rain event"),
            _spec("algal_bloom", ("algal_bloom",), early_s=0.0, note="scripted algal bloom",
                  related=frozenset({"low_oxygen", "oxygen_risk"})),
            _spec("traffic_incident", ("traffic_incident",), early_s=0.0,
                  note="scripted crash or blockage, with its queue"),
            _spec("stuck", ("stuck", "stuck_zero_ok"),
                  quantities=_lane_quantities("stuck", "stuck_zero_ok"),
                  note="a value frozen for hours"),
            # A depth sensor drifting up on a dry day is reported as "flood depth without
            # rain" (a sensor matter): explained by its drift label, not counted as a
            # detection (the drift kind's recall is judged on the neighbours lane).
            _spec("drift", ("neighbours",), quantities=_lane_quantities("neighbours"),
                  related=frozenset({DEPTH_WITHOUT_RAIN_RULE}),
                  note="calibration drift over hours"),
            _spec("spike", (SPIKE_LANE,), late_intervals=2.0,
                  quantities=_lane_quantities(SPIKE_LANE), note="one reading far off"),
            _spec("offline", (SILENT_RULE,), note="device offline (last will), minutes to hours"),
            # A silence is called when the gap is rare for the sensor (and five minutes) on an
            # event-time watermark: bursts of fewer than six lost messages are not expected.
            _spec("dropout", (SILENT_RULE,), min_span_intervals=5.0,
                  note=f"lost messages (the {SILENCE_LANE} lane calls long bursts)"),
            # Called after five steady messages. A clock hours ahead may also make the
            # station's readings "from the future" (quarantined: it falls silent), and one
            # minutes off disagrees with its neighbours at the same (wrong) time.
            _spec("clock_skew", (CLOCK_RULE,), late_intervals=6.0,
                  note="device clock off by minutes to hours",
                  related=frozenset({SILENT_RULE, "neighbours"})),
        )
    }
)  # fmt: skip
"""The matching table: which alerts detect which kind, and with what tolerances."""

UNSCORED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "duplicate": "stored once (idempotent writes): not an alert",
        "out_of_order": "stored by measurement time: not an alert",
        "malformed": "quarantined by ingest with its reason: not an alert",
    }
)
"""Label kinds counted but not scored, and why."""


@dataclass(frozen=True, slots=True)
class LabelOutcome:
    """What happened to one label.

    Args:
        label: the ground-truth label.
        expected: whether recall counts it.
        alert: the earliest matching alert (None: missed).
        delay_s: ``alert.raised_at − label.start`` in seconds.
        delay_intervals: the same in the station's sample intervals.
        matches: how many alerts matched.
    """

    label: TruthEvent
    expected: bool
    alert: AlertTimeline | None
    delay_s: float | None
    delay_intervals: float | None
    matches: int


@dataclass(frozen=True, slots=True)
class KindScore:
    """The figures of one kind in one run."""

    kind: str
    labels: int
    expected: int
    detected: int
    true_alerts: int
    false_alerts: int
    duplicates: int
    precision: float | None
    recall: float | None
    delay_median_s: float | None
    delay_p90_s: float | None
    delay_median_intervals: float | None
    delay_p90_intervals: float | None
    has_detector: bool
    outcomes: tuple[LabelOutcome, ...] = field(repr=False, default=())
    false_alarms: tuple[AlertTimeline, ...] = field(repr=False, default=())


@dataclass(frozen=True, slots=True)
class Scoring:
    """Every kind's score, the alerts that matched nothing, and the unscored labels."""

    kinds: tuple[KindScore, ...]
    unmatched: tuple[AlertTimeline, ...]
    unscored: Mapping[str, int]

    def kind(self, kind: str) -> KindScore:
        """The score of one kind.

        Raises:
            KeyError: when the run had no label and no alert of that kind.
        """
        for score in self.kinds:
            if score.kind == kind:
                return score
        raise KeyError(kind)

    def get(self, kind: str) -> KindScore | None:
        """The score of one kind, or None."""
        return next((s for s in self.kinds if s.kind == kind), None)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear interpolation); None for no values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def _expected(label: TruthEvent, spec: KindSpec, interval_s: float) -> bool:
    span = (label.end - label.start).total_seconds()
    if span < spec.min_span_intervals * interval_s:
        return False
    if spec.quantities is not None and label.quantities:
        return any(q.value in spec.quantities for q in label.quantities)
    return True


def _open_at(alert: AlertTimeline, moment: datetime) -> bool:
    """True when the alert was raised before ``moment`` and not cleared by then."""
    return alert.raised_at < moment and (alert.cleared_at is None or alert.cleared_at >= moment)


def _outcome(
    label: TruthEvent, spec: KindSpec, alerts: Sequence[AlertTimeline], interval_s: float
) -> tuple[LabelOutcome, list[AlertTimeline]]:
    low = label.start.timestamp() - spec.early_s
    high = label.end.timestamp() + spec.late_intervals * interval_s
    found = [
        a
        for a in alerts
        if spec.claims(a) and (low <= a.raised_at.timestamp() <= high or _open_at(a, label.start))
    ]
    first = min(found, key=lambda a: (a.raised_at, a.alert_id)) if found else None
    delay = None if first is None else (first.raised_at - label.start).total_seconds()
    if first is not None and first.raised_at.timestamp() < low:
        delay = 0.0  # already open when it started
    outcome = LabelOutcome(
        label, _expected(label, spec, interval_s), first, delay,
        None if delay is None else delay / interval_s, len(found),
    )  # fmt: skip
    return outcome, found


def _summary(
    kind: str,
    outcomes: list[LabelOutcome],
    candidates: list[AlertTimeline],
    explained: Mapping[int, set[str]],
    has_detector: bool,
) -> KindScore:
    """One kind's figures from its label outcomes and the alerts that could claim it."""
    expected = [o for o in outcomes if o.expected]
    detected = [o for o in expected if o.alert is not None]
    true_alerts = [a for a in candidates if kind in explained.get(a.alert_id, ())]
    false_alarms = tuple(
        a for a in candidates if not explained.get(a.alert_id) and not a.carried_over
    )
    judged = len(true_alerts) + len(false_alarms)
    delays = [o.delay_s for o in detected if o.delay_s is not None]
    steps = [o.delay_intervals for o in detected if o.delay_intervals is not None]
    return KindScore(
        kind, len(outcomes), len(expected), len(detected), len(true_alerts), len(false_alarms),
        sum(max(0, o.matches - 1) for o in outcomes),
        len(true_alerts) / judged if judged else None,
        len(detected) / len(expected) if expected else None,
        statistics.median(delays) if delays else None, percentile(delays, 90),
        statistics.median(steps) if steps else None, percentile(steps, 90),
        has_detector, tuple(outcomes), false_alarms,
    )  # fmt: skip


def score_alerts(
    labels: Iterable[TruthEvent],
    alerts: Iterable[AlertTimeline],
    interval_s: Callable[[str], float],
    kinds: Mapping[str, KindSpec] = KINDS,
    known_rules: frozenset[str] = SYSTEM_RULES,
) -> Scoring:
    """Match alerts to labels and score every kind (rules: see the module docstring).

    Args:
        labels: ground truth of the run.
        alerts: the alerts raised.
        interval_s: a station's sample interval in seconds.
        kinds: the matching table.
        known_rules: the rules the system can raise (a kind none of whose rules is known
            has no detector: its recall is reported as such, not as a failure).
    """
    all_alerts = sorted(alerts, key=lambda a: (a.raised_at, a.alert_id))
    by_station: dict[str | None, list[AlertTimeline]] = defaultdict(list)
    for alert in all_alerts:
        by_station[alert.station_id].append(alert)
    outcomes: dict[str, list[LabelOutcome]] = defaultdict(list)
    explained: dict[int, set[str]] = defaultdict(set)
    unscored: Counter[str] = Counter()
    for label in sorted(labels, key=lambda x: (x.start, x.station_id, x.event_id)):
        spec = kinds.get(label.kind)
        if spec is None:
            unscored[label.kind] += 1
            continue
        station_alerts = by_station.get(label.station_id, [])
        outcome, found = _outcome(label, spec, station_alerts, interval_s(label.station_id))
        outcomes[label.kind].append(outcome)
        for alert in found:
            explained[alert.alert_id].add(label.kind)
        if spec.related:
            related = dataclasses.replace(spec, rules=spec.related, min_severity=())
            for alert in _outcome(label, related, station_alerts, interval_s(label.station_id))[1]:
                explained[alert.alert_id].add(f"~{label.kind}")  # explained, not a detection
    scores = []
    for kind, spec in kinds.items():
        candidates = [a for a in all_alerts if spec.claims(a)]
        if not outcomes.get(kind) and not candidates:
            continue
        scores.append(_summary(kind, outcomes.get(kind, []), candidates, explained,
                               bool(spec.rules & known_rules)))  # fmt: skip
    unmatched = tuple(a for a in all_alerts if not explained.get(a.alert_id) and not a.carried_over)
    return Scoring(tuple(scores), unmatched, dict(unscored))
