"""Cost of following open alerts (current value and trend beside the peak), per reading.

Run: ``.venv/bin/python benchmarks/bench_follow.py`` (a few seconds; ``--sensors``,
``--minutes``, ``--repeats``).

The worst case of the threshold path: N flood sensors that stay flooded for the whole run
(depths between 5 and 55 cm), so every reading reaches an open alert. The conditions are
made once by :func:`processing.conditions.thresholds.evaluate` (its rate is printed too);
the figure is conditions per second through
:meth:`processing.alerts.lifecycle.Lifecycle.step`. The baseline, timed in the same run on
the same conditions, has the conditions' figures removed (alerts that update only when they
get worse, as before following existed). Best of ``--repeats`` runs each, interleaved. The
ratio is following / baseline; the commands column shows how many raises, updates and clears
each path emitted (following adds at most one update per alert per 10 minutes of event
time).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from datetime import UTC, datetime, timedelta

from contract import Domain, Quantity, Reading, Station, StationId
from processing.alerts.lifecycle import Lifecycle
from processing.conditions.base import Condition
from processing.conditions.thresholds import DEFAULT_RULES, evaluate

T0 = datetime(2025, 9, 30, tzinfo=UTC)


def _stream(sensors: int, minutes: int) -> tuple[dict[str, Station], list[Reading]]:
    stations = {
        f"fd-{i}": Station(StationId(f"fd-{i}"), Domain.FLOOD, f"Điểm ngập {i}", "Đống Đa",
                           21.0, 105.8, "flood_depth")
        for i in range(sensors)
    }  # fmt: skip
    readings = []
    for minute in range(minutes):
        at = T0 + timedelta(minutes=minute)
        for i in range(sensors):
            depth = 30.0 + 25.0 * math.sin(minute / 40.0 + i)
            readings.append(Reading(StationId(f"fd-{i}"), Quantity.WATER_DEPTH, depth, at, at))
    return stations, readings


def _evaluate(
    stations: dict[str, Station], readings: list[Reading]
) -> tuple[float, list[Condition]]:
    rules = {Quantity.WATER_DEPTH: [r for r in DEFAULT_RULES if r.name == "flood_depth"]}
    start = time.perf_counter()
    conditions = [c for reading in readings for c in evaluate([reading], rules, stations)]
    return len(readings) / (time.perf_counter() - start), conditions


def _run(stations: dict[str, Station], conditions: list[Condition]) -> tuple[float, int]:
    life = Lifecycle()
    commands = 0
    start = time.perf_counter()
    for cond in conditions:
        if life.step(cond, stations[cond.station_id or ""]) is not None:
            commands += 1
    return len(conditions) / (time.perf_counter() - start), commands


def main() -> None:
    """Print conditions/s of both lifecycle paths and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sensors", type=int, default=50)
    parser.add_argument("--minutes", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    stations, readings = _stream(args.sensors, args.minutes)
    evaluated, followed = max(
        (_evaluate(stations, readings) for _ in range(args.repeats)), key=lambda run: run[0]
    )
    plain = [dataclasses.replace(c, figure=None) for c in followed]
    best: dict[bool, tuple[float, int]] = {}
    for _ in range(args.repeats):
        for follow in (False, True):  # interleaved: both see the same machine load
            rate, commands = _run(stations, followed if follow else plain)
            if rate > best.get(follow, (0.0, 0))[0]:
                best[follow] = (rate, commands)
    print(f"evaluate (texts included): {evaluated:,.0f} readings/s")
    print(f"{'lifecycle path':<28}{'conditions/s':>14}{'commands':>10}")
    for follow, label in ((False, "baseline (no following)"), (True, "following")):
        rate, commands = best[follow]
        print(f"{label:<28}{rate:>14,.0f}{commands:>10}")
    print(f"ratio following / baseline: {best[True][0] / best[False][0]:.2f}")


if __name__ == "__main__":
    main()
