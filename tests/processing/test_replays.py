"""Readings delivered again are withheld once seen, within a bounded memory."""

from datetime import UTC, datetime, timedelta

from contract import Quantity, Reading, StationId
from processing.replays import SeenReadings

T0 = datetime(2025, 9, 30, tzinfo=UTC)


def depth(station: str, minute: int) -> Reading:
    at = T0 + timedelta(minutes=minute)
    return Reading(StationId(station), Quantity.WATER_DEPTH, 1.0, at, at)


def test_a_repeat_is_withheld_and_a_new_time_or_sensor_is_not() -> None:
    seen = SeenReadings()
    first = [depth("fd-a", 0), depth("fd-a", 1), depth("fd-b", 0)]
    assert seen.first_time(first) == first
    assert seen.first_time([depth("fd-a", 1), depth("fd-a", 2), depth("fd-b", 0)]) == [
        depth("fd-a", 2)
    ]
    assert seen.repeats == 2


def test_memory_is_bounded_per_sensor_and_in_sensors() -> None:
    seen = SeenReadings(per_sensor=4, max_sensors=3)
    seen.first_time([depth("fd-a", m) for m in range(10)])
    # only the last four times are remembered: an older one passes as a late reading
    assert seen.first_time([depth("fd-a", 9), depth("fd-a", 2)]) == [depth("fd-a", 2)]
    seen.first_time([depth(f"fd-{n}", 0) for n in "bcd"])  # fd-a is the least recent
    assert len(seen) == 3
    assert seen.first_time([depth("fd-a", 9), depth("fd-d", 0)]) == [depth("fd-a", 9)]
