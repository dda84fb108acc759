"""Traffic incidents: a standing queue next to free flow is a blockage; a slow corridor is not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from contract import Domain, Quantity, Reading, Registry, Sensor, Station, StationId
from processing.alerts import Severity
from processing.alerts.lifecycle import Clear, Lifecycle, Raise
from processing.conditions.base import Condition
from processing.conditions.incidents import TRAFFIC_INCIDENT_RULE, IncidentWatch
from processing.engine import Engine

T0 = datetime(2025, 11, 18, 0, 30, tzinfo=UTC)  # 07:30 in Hanoi, the morning rush
POSITIONS = range(1, 6)
FLOWING = (24.0, 30.0)  # rush-hour traffic: moving, well occupied
QUEUE = (6.0, 64.0)
TRICKLE = (38.0, 3.0)


def _station(n: int) -> Station:
    attrs: dict[str, str | float | int | bool] = {
        "corridor": "nguyen-trai",
        "position": n,
        "free_flow_kmh": 40.0,
    }
    return Station(
        StationId(f"tr-nguyen-trai-{n}"), Domain.TRAFFIC, f"Nguyễn Trãi ({n}/5)", "Thanh Xuân",
        21.0 - 0.005 * n, 105.8, "traffic",
        (Sensor(Quantity.SPEED, 60.0, 0.0, 120.0), Sensor(Quantity.OCCUPANCY, 60.0, 0.0, 100.0)),
        attrs,
    )  # fmt: skip


STATIONS: dict[str, Station] = {s.station_id: s for s in map(_station, POSITIONS)}

State = Callable[[int, int], tuple[float, float]]  # (minute, position) -> (speed, occupancy)


def readings(minutes: range, state: State) -> list[list[Reading]]:
    """One batch per minute: every detector's speed and occupancy."""
    out = []
    for m in minutes:
        batch = []
        for n in POSITIONS:
            at = T0 + timedelta(minutes=m, seconds=2 * n)
            speed, occupancy = state(m, n)
            station = StationId(f"tr-nguyen-trai-{n}")
            batch.append(Reading(station, Quantity.SPEED, speed, at, at))
            batch.append(Reading(station, Quantity.OCCUPANCY, occupancy, at, at))
        out.append(batch)
    return out


def watch(batches: list[list[Reading]]) -> list[Condition]:
    incidents = IncidentWatch()
    found: list[Condition] = []
    for batch in batches:
        watched = {c.dedup_key for c in found if c.severity is not None}
        found += incidents.observe(batch, STATIONS, watched)
    return found


def raised(found: list[Condition]) -> set[str]:
    return {str(c.station_id) for c in found if c.severity is not None}


def crash(minute: int, position: int) -> tuple[float, float]:
    """A blockage at detector 3 from minute 10 to 45; its queue reaches 2 at 20 and 1 at 30."""
    blocked = 10 <= minute < 45
    if blocked and position > 3:
        return TRICKLE
    reached = {3: 10, 2: 20, 1: 30}.get(position)
    cleared = {3: 45, 2: 50, 1: 55}.get(position, 0)
    if reached is not None and reached <= minute < cleared:
        return QUEUE
    return FLOWING


def test_a_blockage_is_named_at_its_site_with_its_queue_and_the_trickle_beyond() -> None:
    found = watch(readings(range(40), crash))
    assert raised(found) == {f"tr-nguyen-trai-{n}" for n in (1, 2, 3, 4)}
    roles: dict[str, object] = {
        str(c.station_id): c.details["role"] for c in found if c.severity is not None
    }
    assert roles["tr-nguyen-trai-3"] == "site"
    assert roles["tr-nguyen-trai-2"] == roles["tr-nguyen-trai-1"] == "queue"
    assert roles["tr-nguyen-trai-4"] == "downstream"
    site = next(c for c in found if c.details.get("role") == "site")
    assert site.severity is Severity.MODERATE
    assert site.group == f"{TRAFFIC_INCIDENT_RULE}:nguyen-trai"
    assert site.texts[0] == "Nghi có sự cố giao thông: Nguyễn Trãi (3/5)"
    assert "next detector, Nguyễn Trãi (4/5), shows only 3%" in site.texts[3]
    assert "lúc 07:" in site.texts[2]
    assert "giờ Hà Nội" in site.texts[2]


def test_the_engine_raises_one_incident_early_and_clears_it_when_the_queue_is_gone() -> None:
    engine = Engine(Lifecycle(clear_after=3, cooldown_s=600))
    engine.use(Registry(STATIONS))
    commands = [c for batch in readings(range(75), crash) for c in engine.process(batch).commands]
    raises = [c for c in commands if isinstance(c, Raise) and c.alert.rule == TRAFFIC_INCIDENT_RULE]
    clears = [c for c in commands if isinstance(c, Clear) and TRAFFIC_INCIDENT_RULE in c.dedup_key]
    site = next(c for c in raises if c.alert.dedup_key.endswith("-3"))
    # three minutes of persistence after the queue forms at minute 10
    assert site.alert.observed_at <= T0 + timedelta(minutes=14)
    assert {c.group_key for c in raises} == {f"{TRAFFIC_INCIDENT_RULE}:nguyen-trai"}
    assert {c.dedup_key for c in clears} == {c.alert.dedup_key for c in raises}


def test_rush_hour_congestion_along_the_whole_corridor_is_not_an_incident() -> None:
    def slow(minute: int, position: int) -> tuple[float, float]:
        return (9.0 + 0.5 * position, 48.0 + 2 * position) if minute >= 5 else FLOWING

    assert raised(watch(readings(range(40), slow))) == set()


def test_rain_slowing_every_detector_alike_is_not_an_incident() -> None:
    def rain(minute: int, position: int) -> tuple[float, float]:
        return (8.0, 40.0) if minute >= 5 and position >= 3 else (12.0, 38.0)

    assert raised(watch(readings(range(40), rain))) == set()


def test_a_single_jammed_minute_decides_nothing() -> None:
    def blip(minute: int, position: int) -> tuple[float, float]:
        if minute in (10, 20) and position == 3:
            return QUEUE
        return TRICKLE if minute in (10, 20) and position == 4 else FLOWING

    assert raised(watch(readings(range(30), blip))) == set()


def test_a_queue_at_the_corridors_last_detector_is_judged_against_the_one_upstream() -> None:
    def end(minute: int, position: int) -> tuple[float, float]:
        return QUEUE if minute >= 5 and position == 5 else FLOWING

    found = watch(readings(range(15), end))
    assert raised(found) == {"tr-nguyen-trai-5"}


def test_a_speed_channel_at_zero_under_ordinary_occupancy_is_not_a_queue() -> None:
    def dead(minute: int, position: int) -> tuple[float, float]:
        if position == 3:
            return 0.0, 28.0
        return TRICKLE if position == 4 else FLOWING

    assert raised(watch(readings(range(20), dead))) == set()
