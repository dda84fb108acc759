"""Traffic incidents: a queue standing at one detector while the next one flows freely (pure).

A blockage (a crash, a fallen tree) leaves a standing queue *upstream* of it and a trickle
*downstream*; recurrent rush-hour congestion and rain slow a whole corridor alike. The test
is therefore spatial, after the California algorithms (Payne & Tignor 1978; algorithm #7:
occupancy difference ``OCCDF``, relative difference ``OCCRDF`` and low downstream occupancy
``DOCC`` between adjacent detectors, with a persistence check), with McMaster's reading of a
detector's state (low speed *and* high occupancy is congestion; low occupancy at speed is
free flow) and each detector's own usual speed for the time of day, so that a bottleneck
that is always there at 08:00 is not news. Detectors are ``tr-<corridor>-<n>`` stations
(registry attributes ``corridor`` and ``position``, 1 at the upstream end).

For each detector, on its minute readings (medians of the last three, so one noisy minute
decides nothing):

- **jammed**: speed ≤ ``JAM_KMH``, occupancy ≥ ``JAM_OCC_PCT`` and speed ≤ ``JAM_OF_USUAL``
  of its usual speed at this time of day;
- **incident site** (the California test): jammed while the downstream neighbour flows —
  ``OCCDF`` ≥ ``OCCDF_MIN_PCT``, ``OCCRDF`` ≥ ``OCCRDF_MIN``, downstream occupancy below
  ``DOCC_MAX_PCT`` and its speed at least ``FLOWING_OF_USUAL`` of its usual. At the
  downstream end of a corridor (or with the downstream detector silent) the queue is judged
  against the *upstream* neighbour instead: jammed here while the detector upstream still
  flows as usual is a queue that formed here first. Kept up for ``PERSISTENCE`` readings the
  site is *established*, and it stays so while its queue stands (speed ≤ ``RELEASE_KMH``);
- **queue**: an established site's upstream neighbours, one after another, while jammed —
  the queue growing back;
- **downstream**: the next detector after an established site while it carries the trickle.

Each becomes a condition ``traffic_incident:<station>`` grouped by ``traffic_incident:<corridor>``
(one incident per blockage in the console). A detector with an open (or held) alert and no
role any more is normal: three such readings clear it. The usual speeds are a per-detector
time-of-day profile (15-minute bins of Hanoi time), learnt only from detectors of corridors
without an incident; until a bin has a few days' samples the registry's ``free_flow_kmh``
stands in (the spatial test does not need it).

>>> from datetime import UTC, datetime, timedelta
>>> from contract import Domain, Quantity, Reading, Station, StationId
>>> def detector(n: int) -> Station:
...     attrs: dict[str, str | float | int | bool] = {"corridor": "x", "position": n}
...     return Station(StationId(f"tr-x-{n}"), Domain.TRAFFIC, f"X ({n}/2)", "Ba Đình",
...                    21.0, 105.8, "traffic", attributes=attrs)
>>> stations = {s.station_id: s for s in (detector(1), detector(2))}
>>> watch = IncidentWatch()
>>> t0 = datetime(2025, 11, 18, 1, tzinfo=UTC)
>>> def minute(m: int, speeds: tuple[float, float], occs: tuple[float, float]) -> list[Reading]:
...     at = t0 + timedelta(minutes=m)
...     return [r for n in (1, 2) for r in (
...         Reading(StationId(f"tr-x-{n}"), Quantity.SPEED, speeds[n - 1], at, at),
...         Reading(StationId(f"tr-x-{n}"), Quantity.OCCUPANCY, occs[n - 1], at, at))]
>>> out = []
>>> for m in range(6):  # a queue at 1 while 2 carries a trickle at speed
...     out += watch.observe(minute(m, (6.0, 38.0), (62.0, 2.0)), stations)
>>> sorted({(c.dedup_key, c.severity.value) for c in out if c.severity})
[('traffic_incident:tr-x-1', 'moderate'), ('traffic_incident:tr-x-2', 'minor')]
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from contract import HANOI_UTC_OFFSET_S, Quantity, Reading, Station, hanoi_time
from processing.alerts import Severity
from processing.conditions.base import Condition, Phase, RuleSpec, Step, Subject

__all__ = ["TRAFFIC_INCIDENT_RULE", "IncidentWatch"]

TRAFFIC_INCIDENT_RULE: Final = "traffic_incident"

# A blockage's standing queue moves at 4–9 km/h; recurrent rush-hour congestion on the inner
# arterials runs at 10–20 km/h (domain.md §7.3). The spatial test below, not this ceiling,
# separates the two; the ceiling only keeps slow-but-moving traffic out.
JAM_KMH: Final = 10.0
# A queue packs the detector: occupancy above ~40 % is McMaster's congested region for urban
# detectors; a slow reading at low occupancy is a signal phase or a lone vehicle.
JAM_OCC_PCT: Final = 35.0
# ... and is well below the detector's own usual speed at this time of day: a bottleneck
# that is jammed every morning is congestion, not an incident.
JAM_OF_USUAL: Final = 0.6
# A new queue packs its detector: occupancy at least 10 points above the detector's usual for
# the hour (a queue's 55–70 % against 30–45 % in the rush). A speed channel drifting to zero
# under ordinary occupancy is a sensor fault, not a queue.
OCC_RISE_PCT: Final = 10.0
# California #7 between a jammed detector and its downstream neighbour: the queue's 55–70 %
# against the trickle's few percent. Adjacent detectors in recurrent congestion differ by
# < 15 points and carry similar occupancies (OCCRDF < 0.3).
OCCDF_MIN_PCT: Final = 25.0
OCCRDF_MIN: Final = 0.6
# DOCC: downstream of a blockage the road is nearly empty; 20 % is below any rush-hour value.
DOCC_MAX_PCT: Final = 20.0
# A neighbour "flows" at 70 % of its usual speed or more (rain slows a corridor by more).
FLOWING_OF_USUAL: Final = 0.7
# At the downstream end of a corridor (or with the next detector silent) only the upstream
# side is known: the queue moves at most half as fast as the detector upstream (4–9 km/h
# against 18–30). Rain slows adjacent detectors alike: 8 against 12 km/h is congestion.
END_SPEED_RATIO: Final = 0.5
# An established queue ends when its speed rises past this (hysteresis above JAM_KMH, so a
# queue crawling at 9–11 km/h does not flap).
RELEASE_KMH: Final = 15.0
# California persistence: the site test must hold for three consecutive minute readings
# (with the three-reading median, about four minutes of evidence).
PERSISTENCE: Final = 3
# Queue and downstream detectors hang on an established site: two readings are enough.
FOLLOW_CONFIRM: Final = 2
# Readings of an open alert's detector without a role that clear it.
CLEAR_READINGS: Final = 3
SMOOTH_READINGS: Final = 3  # median window: one noisy minute decides nothing
FRESH_S: Final = 180.0  # a neighbour silent for three reporting intervals is missing
USUAL_BIN_S: Final = 900.0  # time-of-day profile in 15-minute bins
USUAL_MIN_SAMPLES: Final = 5  # a bin is trusted after five minutes of data
USUAL_MEMORY: Final = 60  # about four days of one bin: the profile follows slow changes
_DAY_S: Final = 86400.0

Role = Literal["site", "queue", "downstream"]
_SEVERITY: Final[Mapping[Role, Severity]] = {
    "site": Severity.MODERATE,
    "queue": Severity.MODERATE,
    "downstream": Severity.MINOR,
}
FloatArray = npt.NDArray[np.float64]


def _median(values: deque[float]) -> float:
    return statistics.median(values) if values else math.nan


@dataclass(slots=True)
class _Detector:
    """One detector's recent readings and its usual speed and occupancy by time of day."""

    ref: Station
    corridor: str
    position: int
    speeds: deque[float] = field(default_factory=lambda: deque(maxlen=SMOOTH_READINGS))
    occupancies: deque[float] = field(default_factory=lambda: deque(maxlen=SMOOTH_READINGS))
    seen_s: float = -math.inf
    last: Reading | None = None
    usual: FloatArray = field(
        default_factory=lambda: np.zeros((int(_DAY_S / USUAL_BIN_S), 2), dtype=np.float64)
    )
    samples: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(int(_DAY_S / USUAL_BIN_S), dtype=np.int64)
    )

    @property
    def speed(self) -> float:
        return _median(self.speeds)

    @property
    def occupancy(self) -> float:
        return _median(self.occupancies)

    def usual_at(self, at_s: float) -> tuple[float | None, float | None]:
        """Usual (speed, occupancy) at this time of day; the free-flow speed until learnt."""
        slot = _slot(at_s)
        if self.samples[slot] >= USUAL_MIN_SAMPLES:
            speed, occupancy = self.usual[slot].tolist()
            return float(speed), float(occupancy)
        free = self.ref.attributes.get("free_flow_kmh")
        return (float(free) if isinstance(free, int | float) else None), None

    def learn(self, at_s: float) -> None:
        if not (self.speeds and self.occupancies):
            return
        slot = _slot(at_s)
        self.samples[slot] += 1
        rate = 1.0 / min(int(self.samples[slot]), USUAL_MEMORY)
        latest = np.array([self.speeds[-1], self.occupancies[-1]])
        self.usual[slot] += rate * (latest - self.usual[slot])


def _slot(at_s: float) -> int:
    return int(((at_s + HANOI_UTC_OFFSET_S) % _DAY_S) // USUAL_BIN_S)


@dataclass(frozen=True, slots=True)
class _Now:
    """What one detector shows at the corridor's evaluation time."""

    det: _Detector
    fresh: bool
    speed: float
    occupancy: float
    usual_speed: float | None
    usual_occupancy: float | None

    @property
    def is_packed(self) -> bool:
        """Occupancy well above the detector's usual at this time of day."""
        usual = self.usual_occupancy
        return usual is None or self.occupancy >= usual + OCC_RISE_PCT

    @property
    def is_jammed(self) -> bool:
        below_usual = self.usual_speed is None or self.speed <= JAM_OF_USUAL * self.usual_speed
        return (
            self.fresh and self.speed <= JAM_KMH and self.occupancy >= JAM_OCC_PCT and below_usual
        )

    @property
    def is_standing(self) -> bool:
        """Still a queue, with hysteresis (an established queue's test)."""
        return self.fresh and self.speed <= RELEASE_KMH and self.occupancy >= JAM_OCC_PCT

    @property
    def is_flowing(self) -> bool:
        usual = self.usual_speed if self.usual_speed is not None else 2 * RELEASE_KMH
        return self.fresh and not self.is_jammed and self.speed >= FLOWING_OF_USUAL * usual


def _starves(queue: _Now, after: _Now) -> bool:
    """California #7 between a queue and its downstream neighbour (OCCDF, OCCRDF, DOCC)."""
    occdf = queue.occupancy - after.occupancy
    return (
        after.is_flowing
        and occdf >= OCCDF_MIN_PCT
        and occdf / queue.occupancy >= OCCRDF_MIN
        and after.occupancy <= DOCC_MAX_PCT
    )


@dataclass(slots=True)
class _Corridor:
    detectors: dict[int, _Detector] = field(default_factory=dict)
    streaks: dict[int, int] = field(default_factory=dict)  # onset test held, in a row
    sites: set[int] = field(default_factory=set)  # established
    roles: dict[int, tuple[Role, int]] = field(default_factory=dict)


class IncidentWatch:
    """Traffic-incident conditions from the corridors' detectors, slice by slice."""

    def __init__(self) -> None:
        self._corridors: dict[str, _Corridor] = {}
        self._detectors: dict[str, _Detector] = {}
        self._indexed: Mapping[str, Station] | None = None

    rules: Final = (
        RuleSpec(TRAFFIC_INCIDENT_RULE, "event", "Nghi có sự cố giao thông",
                 "Suspected traffic incident"),
    )  # fmt: skip
    phase: Final[Phase] = "slice"

    def conditions(self, step: Step) -> list[Condition]:
        """Incident verdicts on the detectors that reported in the slice."""
        return self.observe(step.readings, step.stations, step.watched)

    def observe(
        self,
        chunk: Sequence[Reading],
        stations: Mapping[str, Station],
        watched: Collection[str] = (),
    ) -> list[Condition]:
        """Conditions for the detectors that reported in one event-time slice.

        Args:
            chunk: the slice's readings (other quantities and stations are ignored).
            stations: the registry's stations (corridor, position, names).
            watched: dedup keys with an open or held alert (they hear when it is over).
        """
        self._index(stations)
        updated: dict[str, Reading] = {}
        for reading in chunk:
            det = self._detectors.get(reading.station_id)
            if det is None:
                continue
            if reading.quantity is Quantity.SPEED:
                det.speeds.append(reading.value)
                det.last = updated[reading.station_id] = reading
                det.seen_s = max(det.seen_s, reading.measured_at.timestamp())
            elif reading.quantity is Quantity.OCCUPANCY:
                det.occupancies.append(reading.value)
        out: list[Condition] = []
        for name in sorted({self._detectors[s].corridor for s in updated}):
            out += self._corridor(self._corridors[name], updated, watched)
        return out

    def _index(self, stations: Mapping[str, Station]) -> None:
        """Detectors by corridor and position (again when the registry is swapped)."""
        if stations is self._indexed:
            return
        self._indexed = stations
        for ref in stations.values():
            corridor, position = ref.attributes.get("corridor"), ref.attributes.get("position")
            if not isinstance(corridor, str) or not isinstance(position, int | float):
                continue
            det = self._detectors.get(ref.station_id)
            if det is None or det.ref != ref:
                det = _Detector(ref, corridor, int(position))
                self._detectors[ref.station_id] = det
            self._corridors.setdefault(corridor, _Corridor()).detectors[int(position)] = det

    def _corridor(
        self, corridor: _Corridor, updated: Mapping[str, Reading], watched: Collection[str]
    ) -> list[Condition]:
        fresh = {p for p, d in corridor.detectors.items() if d.ref.station_id in updated}
        now_s = max(corridor.detectors[p].seen_s for p in fresh)
        view = {p: self._now(d, now_s) for p, d in corridor.detectors.items()}
        self._sites(corridor, view, fresh)
        corridor.roles = self._roles(corridor, view)
        out = []
        for position in sorted(fresh):
            out += self._condition(corridor, view, position, watched)
        if not corridor.sites and not any(corridor.streaks.values()):
            for position in fresh:  # an undisturbed corridor teaches the usual profile
                key = f"{TRAFFIC_INCIDENT_RULE}:{corridor.detectors[position].ref.station_id}"
                if key not in watched:
                    corridor.detectors[position].learn(now_s)
        return out

    @staticmethod
    def _now(det: _Detector, now_s: float) -> _Now:
        usual_speed, usual_occupancy = det.usual_at(now_s)
        fresh = now_s - det.seen_s <= FRESH_S and bool(det.occupancies)
        return _Now(det, fresh, det.speed, det.occupancy, usual_speed, usual_occupancy)

    @staticmethod
    def _onset(view: Mapping[int, _Now], position: int) -> bool:
        """The site test at one detector (downstream neighbour, or upstream at the end)."""
        here = view[position]
        if not (here.is_jammed and here.is_packed):
            return False
        after = view.get(position + 1)
        if after is not None and after.fresh:
            return _starves(here, after)
        before = view.get(position - 1)
        return (
            before is not None
            and before.is_flowing
            and here.speed <= END_SPEED_RATIO * before.speed
        )

    def _sites(self, corridor: _Corridor, view: Mapping[int, _Now], fresh: set[int]) -> None:
        """Update the onset streaks of the detectors that reported, and the established sites."""
        for position in fresh:
            # a detector already in an incident (its queue draining) is no new site
            held = position not in corridor.roles and self._onset(view, position)
            corridor.streaks[position] = corridor.streaks.get(position, 0) + 1 if held else 0
            if corridor.streaks[position] >= PERSISTENCE:
                corridor.sites.add(position)
        for position in list(corridor.sites):
            after = view.get(position + 1)
            released = not view[position].is_standing or (after is not None and after.is_jammed)
            if position in fresh and released:
                corridor.sites.discard(position)

    @staticmethod
    def _roles(corridor: _Corridor, view: Mapping[int, _Now]) -> dict[int, tuple[Role, int]]:
        """Each detector's part in an incident, with the incident's site."""
        roles: dict[int, tuple[Role, int]] = {}
        for site in sorted(corridor.sites, reverse=True):
            roles[site] = ("site", site)
            after = view.get(site + 1)
            if after is not None and after.fresh and _starves(view[site], after):
                roles.setdefault(site + 1, ("downstream", site))
            position = site - 1
            while position in view and position not in corridor.sites:
                previous = corridor.roles.get(position)
                was_queue = previous is not None and previous[0] == "queue"
                here = view[position]
                if not (here.is_jammed or (was_queue and here.is_standing)):
                    break
                roles.setdefault(position, ("queue", site))
                position -= 1
        # once the site is cleared, its queue drains from the front: still a queue while it stands
        for position, (role, site) in corridor.roles.items():
            if role != "downstream" and position not in roles and view[position].is_standing:
                roles[position] = ("queue", site)
        return roles

    def _condition(
        self,
        corridor: _Corridor,
        view: Mapping[int, _Now],
        position: int,
        watched: Collection[str],
    ) -> list[Condition]:
        here = view[position]
        det = here.det
        key = f"{TRAFFIC_INCIDENT_RULE}:{det.ref.station_id}"
        role, site = corridor.roles.get(position, (None, position))
        if role is None and corridor.streaks.get(position, 0):
            role = "site"  # not yet established: the lifecycle counts the persistence
        if role is None and key not in watched:
            return []
        assert det.last is not None  # noqa: S101 - it reported in this slice
        subject, at = Subject(det.ref.station_id, Quantity.SPEED), det.last.measured_at
        speed = round(here.speed, 1)
        group = f"{TRAFFIC_INCIDENT_RULE}:{det.corridor}"
        if role is None:
            return [Condition(key, TRAFFIC_INCIDENT_RULE, "event", subject, at, speed, None, True,
                              group=group, clear_after=CLEAR_READINGS)]  # fmt: skip
        details = _details(corridor, view, position, role, site)
        return [
            Condition(
                key, TRAFFIC_INCIDENT_RULE, "event", subject, at, speed, _SEVERITY[role], False,
                JAM_KMH,
                _texts(view, position, role, site), group, details,
                clear_after=CLEAR_READINGS,
                confirm=PERSISTENCE if role == "site" else FOLLOW_CONFIRM,
            )
        ]  # fmt: skip


def _details(
    corridor: _Corridor, view: Mapping[int, _Now], position: int, role: Role, site: int
) -> dict[str, str | float | int | bool | None]:
    here = view[position]
    after = view.get(site + 1)
    queue = [p for p, (r, s) in corridor.roles.items() if s == site and r != "downstream"]
    return {
        "corridor": here.det.corridor,
        "role": role,
        "speed_kmh": round(here.speed, 1),
        "occupancy_pct": round(here.occupancy, 1),
        "usual_speed_kmh": None if here.usual_speed is None else round(here.usual_speed, 1),
        "site_station": view[site].det.ref.station_id,
        "downstream_station": None if after is None else after.det.ref.station_id,
        "downstream_occupancy_pct": None if after is None else round(after.occupancy, 1),
        "downstream_speed_kmh": None if after is None else round(after.speed, 1),
        "queue_detectors": len(queue),
    }


def _texts(
    view: Mapping[int, _Now], position: int, role: Role, site: int
) -> tuple[str, str, str, str]:
    here = view[position]
    place, district = here.det.ref.name, here.det.ref.district
    where = view[site].det.ref.name
    local = hanoi_time(datetime.fromtimestamp(here.det.seen_s, UTC))
    state_vi = f"{here.speed:.0f} km/h, độ chiếm dụng {here.occupancy:.0f}% lúc {local}"
    state_en = f"{here.speed:.0f} km/h, occupancy {here.occupancy:.0f}% at {local}"
    if here.usual_speed is not None:
        state_vi += f" (giờ Hà Nội; thường {here.usual_speed:.0f} km/h vào giờ này)"
        state_en += f" (Hanoi time; usually {here.usual_speed:.0f} km/h at this time)"
    after = view.get(site + 1)
    if role == "downstream" or after is None or not after.fresh:
        beyond_vi = beyond_en = ""
    else:
        beyond_vi = (
            f"; đầu đo kế tiếp {after.det.ref.name} chỉ {after.occupancy:.0f}% ở "
            f"{after.speed:.0f} km/h"
        )
        beyond_en = (
            f"; the next detector, {after.det.ref.name}, shows only "
            f"{after.occupancy:.0f}% at {after.speed:.0f} km/h"
        )
    if role == "site":
        what_vi = f"Hàng xe đứng tại {place}, {district}: {state_vi}{beyond_vi}."
        what_en = f"Standing queue at {place}, {district}: {state_en}{beyond_en}."
    elif role == "queue":
        what_vi = f"Hàng xe từ {where} đã lan tới {place}: {state_vi}{beyond_vi}."
        what_en = f"The queue from {where} has reached {place}: {state_en}{beyond_en}."
    else:
        what_vi = f"Chỉ còn dòng xe thưa qua {place} sau hàng xe đứng tại {where}: {state_vi}."
        what_en = f"Only a trickle passes {place} beyond the queue at {where}: {state_en}."
    return (
        f"Nghi có sự cố giao thông: {where}",
        f"Suspected traffic incident: {where}",
        f"{what_vi} Kiểm tra camera đoạn ngay sau {where}.",
        f"{what_en} Check the cameras just beyond {where}.",
    )
