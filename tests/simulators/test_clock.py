"""Simulated time: speed, catching up with real time, backfill."""

import math
from datetime import UTC, datetime, timedelta

from simulators.clock import SimClock


class FakeTime:
    def __init__(self) -> None:
        self.elapsed = 0.0
        self.wall0 = datetime(2025, 6, 1, 12, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.elapsed

    def wall(self) -> datetime:
        return self.wall0 + timedelta(seconds=self.elapsed)


def test_speed_maps_real_seconds_to_simulated_ones() -> None:
    fake = FakeTime()
    start = fake.wall0 - timedelta(hours=6)
    clock = SimClock(start, 60.0, monotonic=fake.monotonic, wall=fake.wall)
    fake.elapsed = 60.0
    assert clock.now() == start + timedelta(hours=1)
    assert clock.delay_until(start + timedelta(hours=2)) == 60.0
    assert clock.delay_until(start) == 0.0


def test_simulated_time_never_runs_ahead_of_the_wall_clock() -> None:
    fake = FakeTime()
    start = fake.wall0 - timedelta(minutes=59)
    clock = SimClock(start, 60.0, monotonic=fake.monotonic, wall=fake.wall)
    fake.elapsed = 120.0  # would be start + 2 h at speed 60
    assert clock.now() == fake.wall()
    target = fake.wall() + timedelta(seconds=30)
    assert math.isclose(clock.delay_until(target), 30.0)


def test_backfill_never_waits() -> None:
    fake = FakeTime()
    clock = SimClock(
        datetime(2016, 9, 24, tzinfo=UTC), math.inf, monotonic=fake.monotonic, wall=fake.wall
    )
    assert clock.is_backfill
    assert clock.delay_until(datetime(2030, 1, 1, tzinfo=UTC)) == 0.0
