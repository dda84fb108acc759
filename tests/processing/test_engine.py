"""The decision engine: event time, batch independence, glitch holding, silent sensors."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import numpy as np

from contract import Domain, Quantity, Reading, Registry, Sensor, Station, StationId
from processing.alerts import Severity
from processing.alerts.lifecycle import Clear, Command, Lifecycle, Raise, Update
from processing.columns import Columns, time_runs
from processing.engine import Engine

T0 = datetime(2025, 9, 30, tzinfo=UTC)  # an old period: nothing here may use the wall clock

FLOOD = Station(
    StationId("fd-a"), Domain.FLOOD, "Thái Hà", "Đống Đa", 21.01, 105.82, "flood_depth",
    (Sensor(Quantity.WATER_DEPTH, 60.0, 0.0, 300.0),), {"upstream_gauge": "rg-a"},
)  # fmt: skip
GAUGE = Station(StationId("rg-a"), Domain.FLOOD, "Láng", "Đống Đa", 21.02, 105.81, "rain",
                (Sensor(Quantity.RAINFALL, 60.0, 0.0, 100.0),))  # fmt: skip
AIR = Station(StationId("aq-a"), Domain.AIR, "Hoàn Kiếm", "Hoàn Kiếm", 21.03, 105.85, "aq",
              (Sensor(Quantity.PM25, 60.0, 0.0, 1000.0),))  # fmt: skip
REGISTRY = Registry.of([FLOOD, GAUGE, AIR])


def reading(station: str, quantity: Quantity, value: float, minute: float) -> Reading:
    at = T0 + timedelta(minutes=minute)
    return Reading(StationId(station), quantity, value, at, at)


def storm(minutes: int = 180) -> list[Reading]:
    """Dry street, then a downpour at the gauge and the depth following it."""
    rng = np.random.default_rng(3)
    out: list[Reading] = []
    depth = 0.0
    for m in range(minutes):
        rain = 2.5 if 60 <= m < 100 else 0.0  # 150 mm/h for 40 minutes
        if m >= 70:
            depth = max(0.0, depth + (1.2 if m < 105 else -0.6))
        out.append(reading("rg-a", Quantity.RAINFALL, rain, m))
        out.append(reading("fd-a", Quantity.WATER_DEPTH, depth + rng.normal(0, 0.1), m))
        out.append(reading("aq-a", Quantity.PM25, 40.0 + rng.normal(0, 2.0), m))
    return out


def engine() -> Engine:
    e = Engine(Lifecycle(clear_after=3, cooldown_s=600))
    e.use(REGISTRY)
    return e


def summary(commands: list[Command]) -> list[tuple[str, str, str]]:
    out = []
    for c in commands:
        if isinstance(c, Raise | Update):
            out.append((type(c).__name__, c.alert.dedup_key, c.alert.observed_at.isoformat()))
        else:
            out.append(("Clear", c.dedup_key, c.observed_at.isoformat()))
    return out


def test_backfill_batches_decide_what_the_live_stream_decides() -> None:
    readings = storm()
    live, backfill = engine(), engine()
    live_commands: list[Command] = []
    for minute in range(180):  # live: one small batch a minute
        live_commands += live.process(readings[3 * minute : 3 * minute + 3]).commands
    # backfill: batches of 40 minutes, shuffled inside (arrival order is not time order)
    backfill_commands: list[Command] = []
    rng = np.random.default_rng(0)
    for start in range(0, len(readings), 120):
        batch = readings[start : start + 120]
        order = rng.permutation(len(batch))
        backfill_commands += backfill.process([batch[i] for i in order]).commands
    assert summary(backfill_commands) == summary(live_commands)
    keys = {c.alert.dedup_key for c in live_commands if isinstance(c, Raise)}
    assert {"flood_depth:fd-a", "flood_forecast:fd-a", "heavy_rain:rg-a"} <= keys


def test_the_forecast_warns_before_the_street_floods() -> None:
    commands = engine().process(storm()).commands
    raised = {c.alert.dedup_key: c.alert for c in commands if isinstance(c, Raise)}
    forecast, observed = raised["flood_forecast:fd-a"], raised["flood_depth:fd-a"]
    assert forecast.observed_at < observed.observed_at
    assert forecast.details["raised_observed_at"] == forecast.observed_at.isoformat()[:19] + "Z"


def test_an_isolated_spike_raises_no_event_alert_but_a_step_does() -> None:
    e = engine()
    base = [reading("fd-a", Quantity.WATER_DEPTH, 0.2 * (m % 3), m) for m in range(40)]
    e.process(base)
    spike = e.process(
        [reading("fd-a", Quantity.WATER_DEPTH, 85.0, 40)]
        + [reading("fd-a", Quantity.WATER_DEPTH, 0.2, m) for m in range(41, 45)]
    ).commands
    rules = {(type(c).__name__, c.alert.rule) for c in spike if isinstance(c, Raise)}
    assert rules == {("Raise", "spike")}  # a sensor-health note, not a flood
    assert e.lifecycle.held_glitches == 1
    step = e.process(
        [reading("fd-a", Quantity.WATER_DEPTH, 40.0 + (m - 45), m) for m in range(45, 50)]
    ).commands
    flood = [c for c in step if isinstance(c, Raise) and c.alert.rule == "flood_depth"]
    assert len(flood) == 1
    # the jump stays: a rise, not a glitch, so no sensor-health "spike" note this time
    assert not [c for c in step if isinstance(c, Raise) and c.alert.rule == "spike"]
    # held for one reading, then acted upon at the confirming reading's severity
    assert flood[0].alert.observed_at == T0 + timedelta(minutes=46)
    assert flood[0].alert.severity is Severity.SEVERE


def test_a_depth_offset_reset_raises_no_flood_alert() -> None:
    # A depth sensor drifts down to -13 cm over a dry day, then its offset is reset: the
    # jump back to 0 cm is steep, but there is no water, so nothing about a flood.
    e = engine()
    drift = [reading("fd-a", Quantity.WATER_DEPTH, -0.02 * m, m) for m in range(650)]
    e.process(drift)
    reset = [reading("fd-a", Quantity.WATER_DEPTH, 0.1 * (m % 2), m) for m in range(650, 680)]
    commands = e.process(reset).commands
    floods = {"flood_depth", "flood_forecast", "water_rising"}
    assert not [c for c in commands if isinstance(c, Raise) and c.alert.rule in floods]


def test_a_silent_station_raises_once_and_clears_when_it_reports_again() -> None:
    e = engine()
    commands: list[Command] = []
    for start in range(0, 460, 10):  # 400 minutes of history: gaps the silence lane knows
        batch = []
        for m in range(start, start + 10):
            batch.append(reading("aq-a", Quantity.PM25, 40.0 + m % 3, m))
            if not 400 <= m < 425:  # the rain gauge is silent for 25 minutes
                batch.append(reading("rg-a", Quantity.RAINFALL, 0.0, m))
        commands += e.process(batch).commands
    silent = [c for c in commands if "sensor_silent" in summary([c])[0][1]]
    assert [type(c).__name__ for c in silent] == ["Raise", "Clear"]
    raised, cleared = silent
    assert isinstance(raised, Raise)
    assert isinstance(cleared, Clear)
    alert = raised.alert
    assert alert.station_id == "rg-a"
    assert alert.quantity is None
    assert alert.category == "sensor_health"
    assert alert.title_vi.startswith("Mất tín hiệu")
    assert alert.title_en.startswith("Sensor silent")
    assert "giờ Hà Nội" in alert.message_vi
    assert "Hanoi time" in alert.message_en
    # last heard at minute 399; after 400 one-minute gaps, a gap of about eight minutes is
    # one in 10 000 (the calibration is still young: a mature one calls it sooner)
    assert T0 + timedelta(minutes=405) <= alert.observed_at <= T0 + timedelta(minutes=412)
    assert cleared.observed_at >= T0 + timedelta(minutes=425)
    assert cleared.observed_at <= T0 + timedelta(minutes=426)


def test_silence_is_not_blamed_for_the_time_nobody_listened() -> None:
    e = engine()
    e.process([reading("aq-a", Quantity.PM25, 40.0, m) for m in range(400)])
    e.process([reading("rg-a", Quantity.RAINFALL, 0.0, m) for m in range(400)])
    fresh = Engine(Lifecycle())  # a restart: the bank comes back from its snapshot
    fresh.bank = e.bank
    fresh.use(REGISTRY)
    # two hours later, the first readings trickle in: no one is silent yet
    first = fresh.process([reading("aq-a", Quantity.PM25, 40.0, 520)]).commands
    assert first == []
    later: list[Command] = []
    for m in range(521, 540):
        later += fresh.process([reading("aq-a", Quantity.PM25, 40.0, m)]).commands
    assert [c.alert.dedup_key for c in later if isinstance(c, Raise)] == ["sensor_silent:rg-a"]


def test_time_runs_are_sorted_bounded_and_keep_their_columns() -> None:
    minutes = (9, 0, 3, 1, 7, 2, 0, 1.5, 4)  # in half minutes
    readings = [reading("aq-a", Quantity.PM25, float(i), m / 2) for i, m in enumerate(minutes)]
    runs = list(time_runs(Columns.of(readings), 60.0))
    flat = [r.measured_at for run in runs for r in run.readings]
    assert flat == sorted(flat)
    assert sorted(r.value for run in runs for r in run.readings) == list(map(float, range(9)))
    # equal times keep their arrival order (stable)
    zeros = [r.value for run in runs for r in run.readings if r.measured_at == T0]
    assert zeros == [1.0, 6.0]
    assert [len(run) for run in runs] == [5, 2, 2]  # 0–1 min, 1.5–2 min, 3.5–4.5 min
    for run in runs:
        assert (run.readings[-1].measured_at - run.readings[0].measured_at).total_seconds() <= 60
        assert run.times_s.tolist() == [r.measured_at.timestamp() for r in run.readings]
        assert run.values.tolist() == [r.value for r in run.readings]
        assert list(run.sensor_ids) == [r.sensor_id for r in run.readings]


HISTORY_MIN = 400
"""Minutes of one-minute readings before a silence test: gaps the silence lane has learnt."""


def warmed_engine() -> Engine:
    """An engine that has heard aq-a and rg-a every minute for :data:`HISTORY_MIN` minutes."""
    e = engine()
    for start in range(0, HISTORY_MIN, 50):
        e.process([reading(s, q, 0.0 if s == "rg-a" else 40.0 + m % 3, m - HISTORY_MIN)
                   for m in range(start, start + 50)
                   for s, q in (("aq-a", Quantity.PM25), ("rg-a", Quantity.RAINFALL))])  # fmt: skip
    return e


def test_a_device_running_behind_is_late_not_silent() -> None:
    """A backlog upload (or a backfill where one device lags) keeps delivering: no alert."""
    e = warmed_engine()
    commands: list[Command] = []
    for m in range(90):
        batch = [reading("aq-a", Quantity.PM25, 40.0 + m % 3, m)]
        if m >= 30:  # the gauge delivers 20 minutes behind everyone else, every minute
            batch.append(reading("rg-a", Quantity.RAINFALL, 0.0, m - 20))
        elif m < 10:
            batch.append(reading("rg-a", Quantity.RAINFALL, 0.0, m))
        commands += e.process(batch).commands
    silent = [c for c in commands if summary([c])[0][1] == "sensor_silent:rg-a"]
    # silent while nothing came (minutes 10-29), then cleared although still 20 min behind
    assert [type(c).__name__ for c in silent] == ["Raise", "Clear"]
    cleared = silent[1]
    assert isinstance(cleared, Clear)
    assert cleared.observed_at <= T0 + timedelta(minutes=31)  # as soon as it delivers again


def test_a_gap_inside_one_big_batch_is_still_a_silence() -> None:
    """Backfill batches span many minutes: arrival order inside them still counts."""
    e = warmed_engine()
    batch: list[Reading] = []
    for m in range(60):
        batch.append(reading("aq-a", Quantity.PM25, 40.0 + m % 3, m))
        if not 20 <= m < 40:
            batch.append(reading("rg-a", Quantity.RAINFALL, 0.0, m))
    commands = e.process(batch).commands  # one batch, in arrival (= time) order
    silent = [c for c in commands if summary([c])[0][1] == "sensor_silent:rg-a"]
    assert [type(c).__name__ for c in silent] == ["Raise", "Clear"]


def test_a_clock_hours_ahead_does_not_make_the_city_silent() -> None:
    e = engine()
    commands: list[Command] = []
    for m in range(60):
        commands += e.process([reading("aq-a", Quantity.PM25, 40.0 + m % 3, m),
                               reading("rg-a", Quantity.RAINFALL, 0.0, m)]).commands  # fmt: skip
        if m % 10 == 5:  # a device sending local time as UTC: seven hours "ahead", alone
            commands += e.process([reading("fd-a", Quantity.WATER_DEPTH, 0.0, m + 420)]).commands
    assert not [c for c in commands if isinstance(c, Raise)]
    assert e.silence.watermark_s <= (T0 + timedelta(minutes=60)).timestamp()


def test_clocks_minutes_ahead_do_not_make_the_city_silent() -> None:
    # Twenty stations; two devices' clocks run 15 minutes ahead, and a batch arriving late
    # ends with a burst of their readings: "now" stays where most stations are, so nobody
    # is called silent.
    pm25 = (Sensor(Quantity.PM25, 60.0, 0.0, 1000.0),)
    stations = {
        f"aq-{i}": Station(StationId(f"aq-{i}"), Domain.AIR, f"S{i}", "D", 21.0 + 0.01 * i, 105.8,
                           "aq", pm25)
        for i in range(20)
    }  # fmt: skip
    e = Engine(Lifecycle(clear_after=3, cooldown_s=600))
    e.use(Registry(stations))
    commands: list[Command] = []
    for m in range(120):
        batch = [reading(s, Quantity.PM25, 40.0, m) for s in stations if s not in ("aq-0", "aq-1")]
        fast = [reading(s, Quantity.PM25, 40.0, m + 15) for s in ("aq-0", "aq-1")]
        batch = fast + batch
        if m % 30 == 29:  # the fast devices' queued messages arrive in a burst, last
            batch += [reading(s, Quantity.PM25, 40.0, m + 15 + k / 10)
                      for s in ("aq-0", "aq-1") for k in range(1, 40)]  # fmt: skip
        commands += e.process(batch).commands
    assert not [c for c in commands if isinstance(c, Raise) and c.alert.rule == "sensor_silent"]


def test_a_registry_refresh_registers_only_what_changed() -> None:
    """Re-registering 4,000 unchanged stations held the engine for half a second a refresh."""
    e = engine()
    registered: list[list[str]] = []
    register = e.bank.register

    def spy(stations: Iterable[Station]) -> None:
        listed = list(stations)
        registered.append(sorted(s.station_id for s in listed))
        register(listed)

    e.bank.register = spy  # type: ignore[method-assign]
    e.use(Registry.of([FLOOD, GAUGE, AIR]))  # the same registry, read again
    newcomer = dataclasses.replace(AIR, station_id=StationId("aq-b"), lat=21.04)
    e.use(Registry.of([FLOOD, GAUGE, AIR, newcomer]))
    moved = dataclasses.replace(AIR, lat=21.05)
    e.use(Registry.of([FLOOD, GAUGE, moved, newcomer]))
    assert registered == [[], ["aq-b"], ["aq-a"]]
    # the newcomer's readings are scored like everyone's
    scored = e.bank.process([reading("aq-b", Quantity.PM25, 40.0, 1)])
    assert any(lane.indices.size for lane in scored.lanes)


def test_a_restored_bank_has_every_registered_station_registered() -> None:
    fresh = engine()
    restored = Engine(Lifecycle()).bank  # e.g. a snapshot from before the stations existed
    registered: list[str] = []
    register = restored.register

    def spy(stations: Iterable[Station]) -> None:
        listed = list(stations)
        registered.extend(s.station_id for s in listed)
        register(listed)

    restored.register = spy  # type: ignore[method-assign]
    fresh.restore(restored)
    assert fresh.bank is restored
    assert sorted(registered) == sorted(REGISTRY.stations)
