"""Flood-alert lead time (pure): how long before a hotspot crossed 30 cm was it alerted?

For every ``flood`` label (depth ≥ 10 cm until < 5 cm) of a hotspot:

- **Crossing**: the first stored depth reading inside the label window at or above the
  level (30 cm) that the next reading confirms (also ≥ the level, or it is the last one), so a
  lone spike is not a crossing. A flood that never reaches the level has no lead time.
- **First flood alert**: the earliest ``flood_depth``, ``flood_forecast`` or
  ``water_rising`` alert of the hotspot raised between ``label start − early`` (the matching
  table's allowance, :mod:`hanoi_ioc.evaluate.matching`) and the crossing. **Lead time** =
  crossing − its raise time. The report also gives the lead of the first warning *for the
  level itself* (a forecast alert of severity ``severe`` or worse, or the depth alert
  reaching it).
- **Chance** ("where the rain allows it"): the rain onset is the first reading, within the
  wet spell that brought the crossing, at which the hotspot's upstream gauge (registry
  attribute ``upstream_gauge``) measured a trailing-30-minute intensity of at least
  ``heavy_mm_h`` (25 mm/h: the drains' rule-of-thumb capacity, domain reference §6.1); the
  wet spell runs back from the crossing while every 30-minute window holds some rain.
  Without such rain (or a gauge), the onset is the label start: the first sign was the
  water itself. The **opportunity** = crossing − onset. A flood gives a chance at the target
  only when the opportunity is at least the target plus two gauge intervals (the rain must
  have been measured); otherwise the report says no system could have met it, and why.

>>> import numpy as np
>>> from datetime import UTC, datetime
>>> t = 1727654400.0 + 60.0 * np.arange(8)
>>> first_crossing(t, np.array([5.0, 12, 25, 80, 20, 31, 33, 35]), 30.0)  # 80: a spike
1727654700.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from contract import TruthEvent
from hanoi_ioc.evaluate.matching import KINDS
from hanoi_ioc.evaluate.records import AlertTimeline, Series
from processing.alerts import Severity
from processing.conditions.forecasts import FORECAST_RULE

__all__ = ["FloodLead", "LeadConfig", "first_crossing", "flood_lead_times", "rain_onset"]

FloatArray = npt.NDArray[np.float64]
Verdict = Literal["met", "missed", "no_chance", "not_crossed"]
_FLOOD_RULES: Final = KINDS["flood"].rules
_WARNING_RULES: Final = frozenset({FORECAST_RULE, "flood_depth"})


@dataclass(frozen=True, slots=True)
class LeadConfig:
    """Parameters of the lead-time judgement.

    Args:
        level_cm: the depth whose crossing must be warned of.
        target_s: the lead time wanted.
        heavy_mm_h: rain intensity that marks the onset of a flood-making downpour [U].
        rain_window_s: trailing window of that intensity.
        lookback_s: how far before the crossing a wet spell is traced.
    """

    level_cm: float = 30.0
    target_s: float = 600.0
    heavy_mm_h: float = 25.0
    rain_window_s: float = 1800.0
    lookback_s: float = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class FloodLead:
    """The lead-time verdict on one flood label.

    Args:
        label: the flood label.
        peak_cm: highest stored depth in the label window.
        crossed_at: when the level was crossed (None: never).
        onset_at: the rain onset (or the label start when no rain explains it).
        onset_from_rain: True when the onset is the upstream gauge's heavy rain.
        opportunity_s: crossed − onset.
        alert: the first flood alert before the crossing.
        lead_s: crossed − alert raise time.
        warning_at: first warning for the level itself.
        warning_lead_s: crossed − warning_at.
        verdict: ``met``, ``missed``, ``no_chance`` or ``not_crossed``.
    """

    label: TruthEvent
    peak_cm: float | None
    crossed_at: datetime | None
    onset_at: datetime | None
    onset_from_rain: bool
    opportunity_s: float | None
    alert: AlertTimeline | None
    lead_s: float | None
    warning_at: datetime | None
    warning_lead_s: float | None
    verdict: Verdict

    @property
    def has_chance(self) -> bool:
        """True when the rain left room to meet the target."""
        return self.verdict in ("met", "missed")


def first_crossing(times_s: FloatArray, depths: FloatArray, level: float) -> float | None:
    """Time of the first reading ≥ ``level`` that the next reading confirms (None: none)."""
    above = depths >= level
    for i in np.flatnonzero(above).tolist():
        if i + 1 >= depths.size or above[i + 1]:
            return float(times_s[i])
    return None


def rain_onset(
    times_s: FloatArray, rain_mm: FloatArray, until_s: float, config: LeadConfig
) -> float | None:
    """Onset of the heavy rain in the wet spell before ``until_s`` (None: no heavy rain)."""
    keep = (times_s > until_s - config.lookback_s - config.rain_window_s) & (times_s <= until_s)
    t, r = times_s[keep], np.nan_to_num(rain_mm[keep])
    if t.size == 0:
        return None
    cumulative = np.concatenate(([0.0], np.cumsum(r)))
    start = np.searchsorted(t, t - config.rain_window_s, side="right")
    trailing = cumulative[1:] - cumulative[start]  # rain in (t - window, t]
    intensity = trailing * 3600.0 / config.rain_window_s
    wet = trailing > 0
    i = t.size - 1
    while i > 0 and wet[i - 1] and t[i - 1] >= until_s - config.lookback_s:
        i -= 1
    heavy = np.flatnonzero(intensity[i:] >= config.heavy_mm_h)
    return float(t[i + heavy[0]]) if heavy.size else None


def _utc(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _warning_time(
    alerts: Iterable[AlertTimeline], low: datetime, high: datetime
) -> datetime | None:
    times = [
        reached
        for a in alerts
        if a.rule in _WARNING_RULES
        and (reached := a.reached(Severity.SEVERE)) is not None
        and low <= reached <= high
    ]
    return min(times) if times else None


def _judge(
    label: TruthEvent,
    depth: Series | None,
    rain: Series | None,
    alerts: Sequence[AlertTimeline],
    rain_interval_s: float,
    config: LeadConfig,
) -> FloodLead:
    start, end = label.start.timestamp(), label.end.timestamp()
    peak: float | None = None
    crossed: float | None = None
    if depth is not None and len(depth):
        inside = (depth.times_s >= start) & (depth.times_s <= end)
        if inside.any():
            peak = float(np.nanmax(depth.values[inside]))
            crossed = first_crossing(depth.times_s[inside], depth.values[inside], config.level_cm)
    if crossed is None:
        return FloodLead(label, peak, None, None, False, None, None, None, None, None,
                         "not_crossed")  # fmt: skip
    onset = None if rain is None else rain_onset(rain.times_s, rain.values, crossed, config)
    from_rain = onset is not None
    onset = onset if onset is not None else start
    opportunity = crossed - onset
    low = label.start.timestamp() - KINDS["flood"].early_s
    candidates = [
        a for a in alerts if a.rule in _FLOOD_RULES and low <= a.raised_at.timestamp() <= crossed
    ]
    first = min(candidates, key=lambda a: a.raised_at) if candidates else None
    lead = None if first is None else crossed - first.raised_at.timestamp()
    warning = _warning_time(alerts, datetime.fromtimestamp(low, UTC), _utc(crossed) or label.end)
    chance = opportunity >= config.target_s + 2 * rain_interval_s
    verdict: Verdict = (
        "no_chance" if not chance else "met" if (lead or 0.0) >= config.target_s else "missed"
    )
    return FloodLead(
        label, peak, _utc(crossed), _utc(onset), from_rain, opportunity, first, lead, warning,
        None if warning is None else crossed - warning.timestamp(), verdict,
    )  # fmt: skip


def flood_lead_times(
    labels: Iterable[TruthEvent],
    alerts: Iterable[AlertTimeline],
    series: Mapping[tuple[str, str], Series],
    upstream: Mapping[str, str],
    interval_s: Mapping[str, float] | None = None,
    config: LeadConfig | None = None,
) -> list[FloodLead]:
    """The lead-time verdict of every flood label.

    Args:
        labels: ground truth (only ``flood`` labels are judged).
        alerts: the alerts raised.
        series: stored series by ``(station, quantity)``: ``water_depth`` of the hotspots and
            ``rainfall`` of their gauges.
        upstream: hotspot -> its upstream rain gauge.
        interval_s: sample interval of each gauge (60 s when missing).
        config: the judgement's parameters.
    """
    cfg = config or LeadConfig()
    by_station: dict[str | None, list[AlertTimeline]] = {}
    for alert in alerts:
        by_station.setdefault(alert.station_id, []).append(alert)
    out = []
    for label in sorted(labels, key=lambda x: (x.start, x.station_id)):
        if label.kind != "flood":
            continue
        gauge = upstream.get(label.station_id)
        out.append(
            _judge(
                label,
                series.get((label.station_id, "water_depth")),
                series.get((gauge, "rainfall")) if gauge else None,
                by_station.get(label.station_id, []),
                (interval_s or {}).get(gauge or "", 60.0),
                cfg,
            )
        )
    return out
