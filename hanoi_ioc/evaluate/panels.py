"""Which stations a scenario's report shows, and with which series (pure).

One :class:`Panel` per affected sensor: every station with a scripted or threshold *event*
label gets the quantity that shows the event (flood depth, dissolved oxygen, PM2.5, …), with
its upstream rain gauge alongside for a flood hotspot; stations whose event alerts matched
nothing get a panel too (a false alarm should be seen, not just counted); then the stations
with the most sensor-fault labels, up to a limit, so a fault scenario's plots stay readable.
Each panel carries the labels to shade and the alerts to mark.

>>> from datetime import UTC, datetime
>>> from contract import Domain, StationId, Station, TruthEvent
>>> t0 = datetime(2025, 9, 30, tzinfo=UTC)
>>> flood = TruthEvent("f", "s", StationId("fd-a"), "flood", "event", t0, t0)
>>> hotspot = Station(StationId("fd-a"), Domain.FLOOD, "A", "Đống Đa", 21.0, 105.8,
...                       "flood_depth", (), {"upstream_gauge": "rg-a"})
>>> [(p.station_id, p.quantity, p.companion)
...  for p in select_panels([flood], [], {"fd-a": hotspot})]
[('fd-a', 'water_depth', ('rg-a', 'rainfall'))]
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from contract import Quantity, Station, TruthEvent
from hanoi_ioc.evaluate.matching import KINDS
from hanoi_ioc.evaluate.records import AlertTimeline

__all__ = ["PRIMARY", "Panel", "select_panels", "series_keys", "upstream_gauges"]

PRIMARY: Final[Mapping[str, Quantity]] = {
    "flood": Quantity.WATER_DEPTH,
    "oxygen_crash": Quantity.DISSOLVED_OXYGEN,
    "hypoxia": Quantity.DISSOLVED_OXYGEN,
    "algal_bloom": Quantity.CHLOROPHYLL_A,
    "pollution_episode": Quantity.PM25,
    "heavy_rain": Quantity.RAINFALL,
    "traffic_incident": Quantity.SPEED,
}
"""The quantity that shows each event kind."""

Reason = Literal["event", "false_alarm", "faults"]


@dataclass(frozen=True, slots=True)
class Panel:
    """One plot: a sensor's series, the labels shaded on it and the alerts marked on it.

    Args:
        station_id: the station.
        quantity: the quantity plotted.
        labels: ground-truth labels of the station that concern this quantity.
        alerts: alerts of the station about this quantity (or the whole station).
        companion: a second series drawn alongside (the hotspot's upstream rain).
        reason: why the report shows it.
    """

    station_id: str
    quantity: str
    labels: tuple[TruthEvent, ...]
    alerts: tuple[AlertTimeline, ...]
    companion: tuple[str, str] | None
    reason: Reason

    @property
    def key(self) -> tuple[str, str]:
        """``(station, quantity)`` of the plotted series."""
        return self.station_id, self.quantity


def _concerns(label: TruthEvent, quantity: str) -> bool:
    return not label.quantities or any(q.value == quantity for q in label.quantities)


def _panel(
    station: str,
    quantity: str,
    labels: Sequence[TruthEvent],
    alerts: Sequence[AlertTimeline],
    upstream: Mapping[str, str],
    reason: Reason,
) -> Panel:
    mine = tuple(x for x in labels if x.station_id == station and _concerns(x, quantity))
    marked = tuple(a for a in alerts if a.station_id == station and a.quantity in (quantity, None))
    gauge = upstream.get(station) if quantity == Quantity.WATER_DEPTH.value else None
    return Panel(station, quantity, mine, marked, (gauge, "rainfall") if gauge else None, reason)


def upstream_gauges(stations: Mapping[str, Station]) -> dict[str, str]:
    """Hotspot -> its upstream rain gauge (registry attribute ``upstream_gauge``)."""
    out: dict[str, str] = {}
    for station_id, info in stations.items():
        gauge = info.attributes.get("upstream_gauge")
        if isinstance(gauge, str):
            out[station_id] = gauge
    return out


def select_panels(
    labels: Iterable[TruthEvent],
    alerts: Iterable[AlertTimeline],
    stations: Mapping[str, Station],
    *,
    max_false_alarm_panels: int = 8,
    max_fault_panels: int = 6,
) -> list[Panel]:
    """The panels of one scenario's report, events first.

    Args:
        labels: the run's ground truth.
        alerts: the run's alerts.
        stations: the run's stations (upstream gauges, default quantities).
        max_false_alarm_panels: most panels for event alerts that matched no label.
        max_fault_panels: most panels for stations with sensor-fault labels.
    """
    upstream = upstream_gauges(stations)
    all_labels = list(labels)
    all_alerts = list(alerts)
    wanted: dict[tuple[str, str], Reason] = {}
    for label in all_labels:
        primary = PRIMARY.get(label.kind)
        if label.category == "event" and primary is not None:
            wanted.setdefault((label.station_id, primary.value), "event")
    false_alarms = Counter(
        (a.station_id, a.quantity)
        for a in all_alerts
        if a.category == "event" and a.station_id and a.quantity
        and (a.station_id, a.quantity) not in wanted
    )  # fmt: skip
    for (station, alerted), _ in false_alarms.most_common(max_false_alarm_panels):
        if station and alerted:
            wanted.setdefault((station, alerted), "false_alarm")
    faults: Counter[tuple[str, str]] = Counter()
    by_quantity: dict[str, Counter[str]] = defaultdict(Counter)
    for label in all_labels:
        if label.category == "fault" and label.kind in KINDS:
            for q in label.quantities:
                by_quantity[label.station_id][q.value] += 1
            faults[(label.station_id, "")] += 1
    stations_with_panels = {s for s, _ in wanted}
    for (station, _), _n in faults.most_common():
        if len([r for r in wanted.values() if r == "faults"]) >= max_fault_panels:
            break
        if station in stations_with_panels:
            continue
        shown = _fault_quantity(station, by_quantity[station], all_alerts, stations)
        if shown is not None:
            wanted.setdefault((station, shown), "faults")
    order = {"event": 0, "false_alarm": 1, "faults": 2}
    keys = sorted(wanted, key=lambda k: (order[wanted[k]], k))
    return [_panel(s, q, all_labels, all_alerts, upstream, wanted[(s, q)]) for s, q in keys]


def _fault_quantity(
    station: str,
    labelled: Counter[str],
    alerts: Sequence[AlertTimeline],
    stations: Mapping[str, Station],
) -> str | None:
    if labelled:
        return labelled.most_common(1)[0][0]
    seen = Counter(a.quantity for a in alerts if a.station_id == station and a.quantity)
    if seen:
        return seen.most_common(1)[0][0]
    info = stations.get(station)
    return info.sensors[0].quantity.value if info and info.sensors else None


def series_keys(
    panels: Iterable[Panel], extra: Iterable[tuple[str, str]] = ()
) -> set[tuple[str, str]]:
    """Every ``(station, quantity)`` series the panels (and ``extra``) need."""
    keys = set(extra)
    for panel in panels:
        keys.add(panel.key)
        if panel.companion is not None:
            keys.add(panel.companion)
    return keys
