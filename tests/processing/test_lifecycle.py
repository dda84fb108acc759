"""The alert lifecycle: raise, update, hysteresis, clear, cooldown, out-of-order."""

import dataclasses
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from contract import Domain, Quantity, Reading, Station, StationId
from processing.alerts import Severity
from processing.alerts.lifecycle import Clear, Command, Lifecycle, Raise, Update
from processing.conditions.thresholds import DEFAULT_RULES, evaluate

T0 = datetime(2025, 9, 30, 0, 0, tzinfo=UTC)
STATION = Station(StationId("fd-x"), Domain.FLOOD, "Thái Hà", "Đống Đa", 21.0, 105.8, "flood_depth")
RULES = {Quantity.WATER_DEPTH: [r for r in DEFAULT_RULES if r.name == "flood_depth"]}


def depth(minute: int, cm: float) -> Reading:
    at = T0 + timedelta(minutes=minute)
    return Reading(StationId("fd-x"), Quantity.WATER_DEPTH, cm, at, at)


def run(life: Lifecycle, series: list[float], start: int = 0) -> list[Command]:
    out = []
    for i, cm in enumerate(series):
        for cond in evaluate([depth(start + i, cm)], RULES, {"fd-x": STATION}):
            command = life.step(cond, STATION)
            if command is not None:
                out.append(command)
    return out


def test_rises_updates_and_clears_once() -> None:
    life = Lifecycle(clear_after=3, cooldown_s=600)
    commands = run(life, [2, 5, 12, 18, 24, 33, 28, 22, 9, 8, 6, 5, 4, 3])
    kinds = [type(c).__name__ for c in commands]
    assert kinds == ["Raise", "Update", "Update", "Clear"]
    raised = commands[0]
    assert isinstance(raised, Raise)
    assert raised.alert.severity is Severity.MINOR
    assert raised.group_key == "flood_depth:Đống Đa"
    assert "Thái Hà" in raised.alert.message_vi
    assert "giờ Hà Nội" in raised.alert.message_vi
    assert "Hanoi time" in raised.alert.message_en
    worst = commands[2]
    assert isinstance(worst, Update)
    assert worst.alert.severity is Severity.SEVERE


def test_hovering_at_threshold_does_not_flap() -> None:
    life = Lifecycle(clear_after=3, cooldown_s=600)
    commands = run(life, [9, 11, 12, 9, 11, 8, 11, 9, 10.5, 9.5])
    assert [type(c).__name__ for c in commands] == ["Raise"]


def test_one_reading_at_a_level_raises_nothing_two_do() -> None:
    life = Lifecycle(clear_after=3, cooldown_s=600)
    assert run(life, [9, 11, 9, 10.5, 9.5, 12, 9]) == []  # noise grazing the threshold
    raised = run(life, [11, 14], start=10)
    assert [type(c).__name__ for c in raised] == ["Raise"]
    assert isinstance(raised[0], Raise)
    assert raised[0].alert.observed_at == T0 + timedelta(minutes=11)  # at the confirming one
    # an open alert follows every reading: one reading is enough to update it
    assert [type(c).__name__ for c in run(life, [33], start=12)] == ["Update"]


def test_a_slow_fault_raises_only_after_it_persisted() -> None:
    # A lane asking for five consecutive verdicts: four and a normal reading raise nothing
    # (and the streak starts again), five do, at the fifth reading; once open, it follows.
    rule = dataclasses.replace(RULES[Quantity.WATER_DEPTH][0], confirm=5)
    life = Lifecycle(clear_after=3, cooldown_s=600)
    commands = []
    for minute, cm in enumerate([12, 12, 12, 12, 5, 12, 12, 12, 12, 12, 35]):
        for cond in evaluate([depth(minute, cm)], {Quantity.WATER_DEPTH: [rule]},
                             {"fd-x": STATION}):  # fmt: skip
            command = life.step(cond, STATION)
            if command is not None:
                commands.append(command)
    raised, updated = commands
    assert isinstance(raised, Raise)
    assert isinstance(updated, Update)
    assert raised.alert.observed_at == T0 + timedelta(minutes=9)
    assert updated.alert.observed_at == T0 + timedelta(minutes=10)


def test_cooldown_suppresses_same_severity_but_not_worse() -> None:
    life = Lifecycle(clear_after=1, cooldown_s=600)
    first = run(life, [12, 13, 2])
    again = run(life, [12, 12], start=5)  # 5 min later, same severity: suppressed
    worse = run(life, [35, 36], start=7)  # worse: raised (once confirmed)
    assert [type(c).__name__ for c in first] == ["Raise", "Clear"]
    assert again == []
    assert [type(c).__name__ for c in worse] == ["Raise"]
    assert life.suppressed == 1


def test_out_of_order_readings_are_ignored() -> None:
    life = Lifecycle(clear_after=1, cooldown_s=0)
    run(life, [25, 26], start=10)
    late = run(life, [2], start=5)  # older than what was seen: no clear
    assert late == []
    assert life.open_keys == {"flood_depth:fd-x"}


def test_restore_resumes_open_alerts() -> None:
    life = Lifecycle(clear_after=1)
    life.restore([("flood_depth:fd-x", Severity.MODERATE, T0)])
    commands = run(life, [22, 1], start=1)
    assert [type(c).__name__ for c in commands] == ["Clear"]
    assert isinstance(commands[0], Clear)


def test_restored_decided_alert_ignores_a_replay_of_its_event_and_keeps_its_cooldown() -> None:
    # Decided before a restart: raised at minute 2, cleared (event time) at minute 10.
    first = Lifecycle(clear_after=3, cooldown_s=600)
    decided = run(first, [2, 5, 25, 30, 31, 20, 3, 2, 1, 1, 1])
    raised, cleared = decided[0], decided[-1]
    assert isinstance(raised, Raise)
    assert isinstance(cleared, Clear)
    life = Lifecycle(clear_after=3, cooldown_s=600)
    life.restore([], [("flood_depth:fd-x", raised.alert.severity, cleared.observed_at,
                       cleared.observed_at)])  # fmt: skip
    # the same event told again at event times already decided: nothing
    assert run(life, [2, 5, 25, 30, 31, 20, 3], start=1) == []
    # within the cooldown after the clear, at a severity not worse: suppressed
    assert run(life, [25, 26], start=14) == []
    assert life.suppressed == 1
    # after the cooldown, a new flood is a new event
    assert [type(c).__name__ for c in run(life, [25, 26], start=30)] == ["Raise"]


def test_without_its_decided_alert_a_restart_would_raise_the_replay_again() -> None:
    # (what restoring the decided alerts prevents: the lifecycle alone knows nothing)
    life = Lifecycle(clear_after=3, cooldown_s=600)
    assert [type(c).__name__ for c in run(life, [2, 5, 25, 30], start=1)] == ["Raise"]


def test_an_alert_cleared_by_an_operator_has_no_cooldown_but_its_past_is_decided() -> None:
    life = Lifecycle(clear_after=3, cooldown_s=600)
    seen = T0 + timedelta(minutes=10)
    life.restore([], [("flood_depth:fd-x", Severity.MODERATE, seen, None)])
    assert run(life, [25, 26], start=5) == []  # older than what was decided
    assert [type(c).__name__ for c in run(life, [25, 26], start=11)] == ["Raise"]


def test_an_open_alert_wins_over_an_older_decided_one_of_its_key() -> None:
    life = Lifecycle(clear_after=1)
    life.restore([("flood_depth:fd-x", Severity.MODERATE, T0 + timedelta(minutes=20))],
                 [("flood_depth:fd-x", Severity.SEVERE, T0, T0)])  # fmt: skip
    assert life.open_keys == {"flood_depth:fd-x"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=120), min_size=1, max_size=60))
def test_raise_and_clear_alternate(series: list[float]) -> None:
    life = Lifecycle(clear_after=2, cooldown_s=0)
    open_ = False
    for command in run(life, series):
        if isinstance(command, Raise):
            assert not open_
            open_ = True
        elif isinstance(command, Clear):
            assert open_
            open_ = False
        else:
            assert open_
    assert open_ == bool(life.open_keys)
