"""Detector cost per batch: vectorised ``process_many`` against a per-sensor loop.

Run: ``.venv/bin/python benchmarks/bench_detectors.py`` (about a minute; ``--quick`` for a
smoke run, ``--sizes 1000,10000`` to choose sizes, ``--detectors ewma,spike`` to choose
detectors, ``--warm 600`` to time settled calibrations rather than sensors just past their
warm-up).

For every detector and fleet size N, one batch holds one reading per sensor (N readings).
The vectorised figure is the median CPU time of ``process_many`` on such batches. The loop
baseline is the same detector driven one reading at a time through ``score_one`` /
``learn_one`` (the per-sensor loop the contract guarantees to be equivalent), measured in the
same run on up to ``--loop-sample`` sensors and scaled linearly to N (marked ``~``), because
looping 100 000 sensors per batch would take minutes. A last row per detector shows a 10k
batch that holds 4 readings per sensor (exact stream semantics cost one round per reading
rank). Ratios are loop time / vectorised time. For scale, the last rows time a plain-Python
EWMA loop over lists (no numpy per reading), the cheapest possible per-sensor loop.

``--series`` measures the other path: one stream scored point by point through
:class:`processing.offline.backtest.Backtester`, as ``hanoi-ioc backtest --csv`` does
(20 000 points of
a five-minute series with a daily cycle), in µs per point, next to two baselines timed in the
same run on the same points: the plain-Python EWMA z-score loop (the floor of any per-point
Python detector) and a robust numpy detector (median/MAD of the last 64 points, one numpy call
per point). Ratios are against the plain-Python loop.

``--bank`` measures the live path where the calibrated detector now runs: the hourly lanes of
:data:`processing.conditions.lanes.DEFAULT_LANES` (PM2.5 and NO2 hourly means of N stations) in a
:class:`processing.bank.DetectorBank`, ms per hourly batch, against the same lanes with the
previous ``pollution_unusual`` detector (``seasonal_mad``) timed in the same run. The per-reading
lanes are untouched by the change (the calibrated lane takes hourly means only).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np
import numpy.typing as npt

from contract import Quantity, Reading, StationId
from processing.bank import DetectorBank, LaneSpec
from processing.conditions.lanes import DEFAULT_LANES
from processing.detectors import DETECTORS, SpatialDetector, VectorDetector, make_detector
from processing.offline.backtest import Backtester

Array = npt.NDArray[np.float64] | npt.NDArray[np.intp]
T0 = 1_790_000_000.0
WARM_STEPS = 24
STEP_S = 60.0


def build(name: str, n: int) -> VectorDetector:
    detector = make_detector(name, capacity=n)
    if isinstance(detector, SpatialDetector):
        rng = np.random.default_rng(1)
        detector.set_positions(
            np.arange(n), 20.9 + 0.25 * rng.random(n), 105.7 + 0.25 * rng.random(n)
        )
    return detector


def batch(n: int, step: int, rng: np.random.Generator) -> tuple[Array, Array, Array]:
    slots = np.arange(n, dtype=np.intp)
    t = T0 + STEP_S * step
    values = 6.0 + np.sin(t / 7200.0) + 0.01 * (slots % 50) + rng.normal(0.0, 0.2, n)
    return slots, values, np.full(n, t)


def cpu_ms(fn: Callable[[], object]) -> float:
    start = time.thread_time()
    fn()
    return (time.thread_time() - start) * 1e3


def vectorised_ms(
    name: str, n: int, repeats: int, per_sensor: int = 1, warm: int = WARM_STEPS
) -> float:
    rng = np.random.default_rng(0)
    detector = build(name, n)
    for step in range(warm):  # past the detectors' warm-up periods
        detector.process_many(*batch(n, step, rng))
    timings = []
    for step in range(warm, warm + repeats):
        parts = [batch(n, step * per_sensor + k, rng) for k in range(per_sensor)]
        slots, values, times = (np.concatenate(p) for p in zip(*parts, strict=True))
        timings.append(cpu_ms(partial(detector.process_many, slots, values, times)))
    return statistics.median(timings)


def loop_ms(name: str, n: int, sample: int, warm: int = WARM_STEPS) -> tuple[float, bool]:
    # The per-reading cost does not depend on the fleet size, so m sensors are enough.
    m = min(n, sample)
    rng = np.random.default_rng(0)
    detector = build(name, m)
    for step in range(warm):
        detector.process_many(*batch(m, step, rng))
    thresholder = detector.thresholder()
    slots, values, times = batch(m, warm, rng)
    triples = list(zip(slots[:m].tolist(), values[:m].tolist(), times[:m].tolist(), strict=True))

    def run() -> None:
        for slot, value, when in triples:
            score = detector.score_one(value, when, slot=slot)
            detector.learn_one(value, when, slot=slot, protect=thresholder.classify(score))

    return cpu_ms(run) * n / m, m < n


def python_ewma_ms(n: int) -> float:
    """Reference: a plain-Python EWMA z-score loop over lists (performance.md §4 style)."""
    rng = np.random.default_rng(0)
    mean, var = [6.0] * n, [0.04] * n
    values = (6.0 + rng.normal(0.0, 0.2, n)).tolist()

    def run() -> None:
        for i, x in enumerate(values):
            d = x - mean[i]
            z = abs(d) / (var[i] ** 0.5 + 1e-9)
            if z < 4.0:
                mean[i] += 0.05 * d
                var[i] = 0.95 * (var[i] + 0.05 * d * d)

    return statistics.median(cpu_ms(run) for _ in range(3))


def daily_series(n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(3)
    t = T0 + 300.0 * np.arange(n)
    v = 50.0 + 10.0 * np.sin(2 * np.pi * t / 86_400.0) + rng.normal(0.0, 1.0, n)
    return np.asarray(t, dtype=np.float64), np.asarray(v, dtype=np.float64)


def series_us(detector: str, n: int) -> float:
    t, v = daily_series(n)
    return cpu_ms(partial(Backtester(detector).score, t, v)) * 1e3 / n


def python_ewma_series_us(n: int) -> float:
    """Baseline: the plain-Python EWMA z-score loop, one stream, per point."""
    _, v = daily_series(n)
    values = v.tolist()

    def run() -> None:
        mean, var = values[0], 1.0
        for x in values:
            d = x - mean
            z = abs(d) / (var**0.5 + 1e-9)
            if z < 4.0:
                mean += 0.05 * d
                var = 0.95 * (var + 0.05 * d * d)

    return cpu_ms(run) * 1e3 / n


def numpy_mad_series_us(n: int) -> float:
    """Baseline: a robust numpy detector (median/MAD of the last 64 points), per point."""
    _, v = daily_series(n)

    def run() -> None:
        for i in range(64, v.size):
            window = v[i - 64 : i]
            med = np.median(window)
            mad = np.median(np.abs(window - med)) + 1e-9
            _ = abs(v[i] - med) / mad > 5.0

    return cpu_ms(run) * 1e3 / (n - 64)


def series_table(names: list[str], n: int, repeats: int) -> None:
    """Single-stream cost per point (backtest path) with same-run baselines."""
    base = statistics.median(python_ewma_series_us(n) for _ in range(repeats))
    rows = [("python-ewma (baseline)", base), ("numpy median/MAD, 64", numpy_mad_series_us(n))]
    rows += [(name, statistics.median(series_us(name, n) for _ in range(repeats)))
             for name in names]  # fmt: skip
    print(f"\nsingle stream, {n} points through Backtester (µs per point, CPU time)")
    print(f"{'detector':24} {'us/point':>9} {'x python-ewma':>14}")
    for name, us in rows:
        print(f"{name:24} {us:>9.2f} {us / base:>13.1f}x")


def hourly_batches(n: int, hours: int) -> list[list[Reading]]:
    rng = np.random.default_rng(5)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    base = 40.0 + 20.0 * rng.random(n)
    batches = []
    for h in range(hours):
        at = start + timedelta(hours=h)
        daily = 1.0 + 0.3 * np.sin(2 * np.pi * h / 24.0)
        pm = base * daily * np.exp(rng.normal(0.0, 0.2, n))
        batch = [Reading(StationId(f"aq-{i}"), Quantity.PM25, float(pm[i]), at, at)
                 for i in range(n)]  # fmt: skip
        batch += [Reading(StationId(f"aq-{i}"), Quantity.NO2, float(0.5 * pm[i]), at, at)
                  for i in range(n)]  # fmt: skip
        batches.append(batch)
    return batches


def bank_ms(specs: tuple[LaneSpec, ...], n: int, repeats: int) -> float:
    bank = DetectorBank(specs)
    batches = hourly_batches(n, 48 + repeats)
    for batch in batches[:48]:  # two days: past every warm-up
        bank.process(batch, "hourly")
    return statistics.median(
        cpu_ms(partial(bank.process, batch, "hourly")) for batch in batches[48:]
    )


def bank_table(sizes: list[int], repeats: int) -> None:
    """Hourly lanes per batch: the calibrated pollution lane against the previous one."""
    previous = tuple(
        LaneSpec(s.name, "seasonal_mad", {"weekly": False, "direction": "up"},
                 s.quantities, cadence=s.cadence)
        if s.name == "pollution_unusual" else s
        for s in DEFAULT_LANES
    )  # fmt: skip
    print("\nhourly lanes of DEFAULT_LANES, ms per hourly batch (PM2.5 + NO2 of N stations)")
    print(f"{'N':>7} {'seasonal_mad (before)':>22} {'calibrated (now)':>17} {'now/before':>11}")
    for n in sizes:
        before = bank_ms(previous, n, repeats)
        now = bank_ms(DEFAULT_LANES, n, repeats)
        print(f"{n:>7} {before:>22.2f} {now:>17.2f} {now / before:>10.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--detectors", default=",".join(sorted(DETECTORS)))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loop-sample", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="sizes 1000,10000; 2 repeats")
    parser.add_argument("--series", action="store_true", help="single-stream cost per point")
    parser.add_argument("--points", type=int, default=20_000, help="points of --series")
    parser.add_argument("--bank", action="store_true", help="hourly lanes, before and after")
    parser.add_argument(
        "--warm", type=int, default=WARM_STEPS,
        help="batches before timing (24: just past warm-up; 600: settled calibrations)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.bank:
        bank_table([100, 1000] if args.quick else [100, 1000, 10000], 2 if args.quick else 5)
        return 0
    if args.series:
        names = args.detectors.split(",") if args.detectors != ",".join(sorted(DETECTORS)) else [
            "calibrated", "seasonal_mad", "ewma", "spike"]  # fmt: skip
        series_table(names, args.points, 3 if not args.quick else 1)
        return 0
    sizes = [1000, 10000] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeats = 2 if args.quick else args.repeats
    names = args.detectors.split(",")
    started = time.perf_counter()
    print(f"{'detector':14} {'N':>7} {'vector ms':>10} {'us/reading':>10} "
          f"{'loop ms':>12} {'loop/vector':>11}")  # fmt: skip
    for name in names:
        for n in sizes:
            vec = vectorised_ms(name, n, repeats, warm=args.warm)
            loop, scaled = loop_ms(name, n, args.loop_sample, args.warm)
            mark = "~" if scaled else " "
            print(f"{name:14} {n:>7} {vec:>10.2f} {vec * 1e3 / n:>10.3f} "
                  f"{mark}{loop:>11.1f} {loop / vec:>10.0f}x")  # fmt: skip
        repeated = vectorised_ms(name, 10_000, repeats, per_sensor=4, warm=args.warm)
        print(f"{name:14} {'10k x4':>7} {repeated:>10.2f} {repeated * 1e3 / 40_000:>10.3f}")
        sys.stdout.flush()
    for n in sizes:
        ref = python_ewma_ms(n)
        print(f"{'python-ewma':14} {n:>7} {'':>10} {'':>10} {ref:>12.1f}   (plain-Python loop)")
    print(f"total wall time {time.perf_counter() - started:.1f} s "
          "(~ = loop measured on a sample of sensors and scaled linearly)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
