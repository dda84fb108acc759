"""Scenarios: declarative YAML files (in ``simulators/scenarios/``) loaded into typed values.

A scenario names a default start (an absolute time, or ``now-6h`` style), an optional
duration, the background rain regime, scripted events, fault rates and scripted faults.
Event times are offsets from the run's start (``90m``, ``1d6h``, ``30s``), so the same
file can be replayed at any date. ``list_scenarios()`` shows the bundled ones; a path to
any ``.yaml`` file works too.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import cast

import yaml

from contract import Quantity, Station
from simulators.errors import ScenarioError
from simulators.events import (
    Event,
    OxygenCrash,
    PollutionEpisode,
    RainEvent,
    RainShape,
    TrafficIncident,
)
from simulators.faults import FaultKind, FaultRates, ScriptedFault
from simulators.fleet import select_stations
from simulators.signals.weather import BackgroundRain

__all__ = ["Scenario", "list_scenarios", "load_scenario", "parse_duration"]

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNIT_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_NOW_RE = re.compile(r"^now(?:([+-])(.+))?$")


def parse_duration(text: object) -> float:
    """Seconds in ``1d6h``, ``90m``, ``30s``, ``0`` or a plain number of seconds.

    >>> parse_duration("1d6h30m"), parse_duration(90), parse_duration("45s")
    (109800.0, 90.0, 45.0)

    Raises:
        ScenarioError: when it is not a duration.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    value = str(text).strip().lower()
    if _DURATION_RE.sub("", value) == "" and value:
        return sum(float(n) * _UNIT_S[u] for n, u in _DURATION_RE.findall(value))
    try:
        return float(value)
    except ValueError:
        msg = f"{text!r} is not a duration (e.g. 90m, 6h, 1d6h)"
        raise ScenarioError(msg) from None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A loaded scenario.

    Args:
        name: short name (the file's stem).
        title_vi: Vietnamese title.
        title_en: English title.
        description: what it shows and where its figures come from.
        start: default start: ISO time with offset, or ``now``/``now-6h``.
        duration_s: default length (None: run until stopped).
        background_rain: ``seasonal``, ``light`` or ``none``.
        events: scripted events.
        fault_rates: fault rates (overridable from the CLI).
        scripted_faults: faults at fixed times.
    """

    name: str
    title_vi: str
    title_en: str
    description: str
    start: str = "now"
    duration_s: float | None = None
    background_rain: BackgroundRain = "seasonal"
    events: tuple[Event, ...] = ()
    fault_rates: FaultRates = field(default_factory=FaultRates)
    scripted_faults: tuple[ScriptedFault, ...] = ()

    def default_start(self, now: datetime) -> datetime:
        """The start to use when none is given (minutes floored)."""
        match = _NOW_RE.match(self.start.strip())
        if match is None:
            return _aware(self.start)
        sign, offset = match.groups()
        delta = timedelta(seconds=parse_duration(offset) if offset else 0.0)
        moment = now + delta if sign == "+" else now - delta
        return moment.astimezone(UTC).replace(second=0, microsecond=0)

    def check(self, fleet: Sequence[Station]) -> None:
        """Check every station an event or fault names against the fleet.

        Raises:
            ScenarioError: naming the first unknown station.
        """
        known = {s.station_id for s in fleet}
        named: list[str] = [f.station_id for f in self.scripted_faults]
        for event in self.events:
            if isinstance(event, RainEvent):
                named.extend(g for g, _ in event.totals_mm)
            elif isinstance(event, PollutionEpisode | OxygenCrash):
                named.extend(event.stations)
            else:
                named.append(f"tr-{event.corridor}-{event.position}")
        for station in named:
            if station not in known:
                msg = f"scenario {self.name!r} names unknown station {station!r}"
                raise ScenarioError(msg)


def _aware(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        msg = f"start {text!r} is neither an ISO time nor now[-+]<duration>"
        raise ScenarioError(msg) from None
    if moment.utcoffset() is None:
        msg = f"start {text!r} needs a UTC offset (e.g. +07:00)"
        raise ScenarioError(msg)
    return moment.astimezone(UTC)


def _mapping(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        msg = f"{where} must be a mapping"
        raise ScenarioError(msg)
    return cast("Mapping[str, object]", value)


def _stations(value: object, fleet: Sequence[Station], where: str) -> tuple[str, ...]:
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list) or not patterns:
        msg = f"{where}: stations must be a pattern or a list of patterns"
        raise ScenarioError(msg)
    chosen = tuple(s.station_id for s in select_stations(fleet, [str(p) for p in patterns]))
    if not chosen:
        msg = f"{where}: no station matches {patterns!r}"
        raise ScenarioError(msg)
    return chosen


def _event(raw: Mapping[str, object], fleet: Sequence[Station], where: str) -> Event:
    kind = raw.get("kind")
    name = str(raw.get("name", kind))
    start = parse_duration(raw.get("start", 0))
    try:
        if kind == "rain":
            totals = _mapping(raw["totals_mm"], f"{where}.totals_mm")
            shape = str(raw.get("shape", "storm"))
            if shape not in ("storm", "burst", "steady"):
                msg = f"{where}: shape must be storm, burst or steady"
                raise ScenarioError(msg)
            return RainEvent(
                name,
                start,
                parse_duration(raw["duration"]),
                tuple((str(g), float(str(v))) for g, v in totals.items()),
                cast("RainShape", shape),
            )
        if kind == "pollution_episode":
            return PollutionEpisode(
                name,
                _stations(raw["stations"], fleet, where),
                start,
                parse_duration(raw["duration"]),
                float(str(raw.get("factor", 2.0))),
                float(str(raw.get("floor_ug_m3", 0.0))),
                parse_duration(raw.get("ramp", "12h")),
            )
        if kind == "oxygen_crash":
            return OxygenCrash(
                name,
                _stations(raw["stations"], fleet, where),
                parse_duration(raw["bloom_start"]),
                parse_duration(raw["collapse"]),
                parse_duration(raw["aeration"]),
                parse_duration(raw.get("recovery", "3d")),
                float(str(raw.get("bloom_factor", 3.5))),
                float(str(raw.get("decay_mg_l_h", 1.1))),
            )
        if kind == "traffic_incident":
            return TrafficIncident(
                name,
                str(raw["corridor"]),
                int(str(raw["position"])),
                start,
                parse_duration(raw["duration"]),
                float(str(raw.get("capacity_factor", 0.1))),
            )
    except KeyError as exc:
        msg = f"{where}: missing field {exc.args[0]!r}"
        raise ScenarioError(msg) from None
    except ValueError as exc:
        msg = f"{where}: {exc}"
        raise ScenarioError(msg) from None
    msg = f"{where}: unknown event kind {kind!r}"
    raise ScenarioError(msg)


def _scripted_fault(raw: Mapping[str, object], where: str) -> ScriptedFault:
    try:
        kind = FaultKind(str(raw["kind"]))
        if kind not in (FaultKind.STUCK, FaultKind.DRIFT, FaultKind.OFFLINE, FaultKind.CLOCK_SKEW):
            msg = f"{where}: only stuck, drift, offline and clock_skew can be scripted"
            raise ScenarioError(msg)
        quantity = Quantity(str(raw["quantity"])) if "quantity" in raw else None
        magnitude = float(str(raw["magnitude"])) if "magnitude" in raw else None
        return ScriptedFault(
            kind,
            str(raw["station"]),
            parse_duration(raw.get("start", 0)),
            parse_duration(raw["duration"]),
            quantity,
            magnitude,
        )
    except KeyError as exc:
        msg = f"{where}: missing field {exc.args[0]!r}"
        raise ScenarioError(msg) from None
    except ValueError as exc:
        msg = f"{where}: {exc}"
        raise ScenarioError(msg) from None


def _faults(raw: object, where: str) -> tuple[FaultRates, tuple[ScriptedFault, ...]]:
    if raw is None:
        return FaultRates(), ()
    section = _mapping(raw, where)
    rates = _mapping(section.get("rates", {}), f"{where}.rates")
    try:
        fault_rates = FaultRates(**{str(k): float(str(v)) for k, v in rates.items()})
    except (TypeError, ValueError) as exc:
        msg = f"{where}.rates: {exc}"
        raise ScenarioError(msg) from None
    scripted = section.get("scripted", []) or []
    if not isinstance(scripted, list):
        msg = f"{where}.scripted must be a list"
        raise ScenarioError(msg)
    return fault_rates, tuple(
        _scripted_fault(_mapping(item, f"{where}.scripted[{i}]"), f"{where}.scripted[{i}]")
        for i, item in enumerate(scripted)
    )


def parse_scenario(text: str, name: str, fleet: Sequence[Station]) -> Scenario:
    """Build a scenario from YAML text.

    Raises:
        ScenarioError: for anything that does not fit.
    """
    try:
        raw = _mapping(yaml.safe_load(text), name)
    except yaml.YAMLError as exc:
        msg = f"scenario {name!r} is not valid YAML: {exc}"
        raise ScenarioError(msg) from None
    title = _mapping(raw.get("title", {}), f"{name}.title")
    duration = raw.get("duration")
    background = str(raw.get("background_rain", "seasonal"))
    if background not in ("seasonal", "light", "none"):
        msg = f"{name}: background_rain must be seasonal, light or none"
        raise ScenarioError(msg)
    events = raw.get("events", []) or []
    if not isinstance(events, list):
        msg = f"{name}.events must be a list"
        raise ScenarioError(msg)
    rates, scripted = _faults(raw.get("faults"), f"{name}.faults")
    scenario = Scenario(
        str(raw.get("name", name)),
        str(title.get("vi", name)),
        str(title.get("en", name)),
        str(raw.get("description", "")).strip(),
        str(raw.get("start", "now")),
        parse_duration(duration) if duration is not None else None,
        background,  # type: ignore[arg-type]
        tuple(
            _event(_mapping(e, f"{name}.events[{i}]"), fleet, f"{name}.events[{i}]")
            for i, e in enumerate(events)
        ),
        rates,
        scripted,
    )
    scenario.default_start(datetime.now(UTC))  # validates the start now, not mid-run
    scenario.check(fleet)
    return scenario


def list_scenarios() -> list[str]:
    """Names of the bundled scenarios."""
    folder = resources.files("simulators.scenarios")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str, fleet: Sequence[Station]) -> Scenario:
    """Load a bundled scenario by name, or any scenario file by path.

    Raises:
        ScenarioError: when it cannot be found or does not make sense.
    """
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            msg = f"scenario file {path} does not exist"
            raise ScenarioError(msg)
        return parse_scenario(path.read_text(encoding="utf-8"), path.stem, fleet)
    resource = resources.files("simulators.scenarios") / f"{name_or_path}.yaml"
    if not resource.is_file():
        known = ", ".join(list_scenarios())
        msg = f"no scenario named {name_or_path!r}; bundled: {known}"
        raise ScenarioError(msg)
    return parse_scenario(resource.read_text(encoding="utf-8"), name_or_path, fleet)
