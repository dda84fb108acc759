"""Processing's cost per batch and memory by registry size: the engine in a process of its own.

For ``sensors`` sensors (load-mode air stations, 8 sensors each) every sensor reports once
a minute of event time; the readings are cut into batches of ``batch`` readings (processing's
``PROC_BATCH_MAX_READINGS``) and fed to :class:`processing.engine.Engine`, configured as the
service configures it. One round (every sensor once) warms the engine up (first sight of a
sensor allocates its detector slots); the next ``rounds`` are timed. Memory: resident memory
after the registry is adopted, and the peak (VmHWM) at the end — the engine's part of what a
processing instance carries at that size (the service adds its pool, counters and a step's
feed batches). Each size runs in a fresh process so peaks do not mix.

Run as a child: ``python -m hanoi_ioc.bench.engine_cost SENSORS BATCH ROUNDS``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from contract import Reading, Registry
from hanoi_ioc.bench import procstat
from processing.alerts.lifecycle import Lifecycle
from processing.engine import Engine
from processing.settings import ProcessingSettings
from simulators.fleet import AIR_QUANTITIES
from simulators.load import load_fleet

__all__ = ["measure", "run_size"]

_TYPICAL = (40.0, 60.0, 30.0, 12.0, 900.0, 40.0, 26.0, 75.0)


def _engine() -> Engine:
    # the defaults, whatever the environment says
    defaults = {k: f.default for k, f in ProcessingSettings.model_fields.items()}
    s = ProcessingSettings.model_construct(**defaults)
    return Engine(
        Lifecycle(clear_after=s.clear_after_samples, cooldown_s=s.cooldown_s),
        lead_time_s=s.forecast_lead_time_s, slice_s=s.slice_s, min_silence_s=s.min_silence_s,
    )  # fmt: skip


def measure(sensors: int, batch: int, rounds: int) -> dict[str, float | int]:
    """Time the engine on ``rounds`` rounds of ``sensors`` readings, in ``batch``-sized steps."""
    base_mb = procstat.memory_mb() or 0.0
    stations = load_fleet(max(1, sensors // len(AIR_QUANTITIES)))
    registry = Registry.of(stations)
    engine = _engine()
    engine.use(registry)
    pairs = [(s.station_id, q) for s in stations for q in AIR_QUANTITIES]
    typical = [_TYPICAL[j] for _ in stations for j in range(len(AIR_QUANTITIES))]
    n = len(pairs)
    adopted_mb = procstat.memory_mb() or 0.0
    rng = np.random.default_rng(1)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    cpu: list[float] = []
    wall: list[float] = []
    readings_timed = 0
    for r in range(rounds + 1):
        noise = rng.normal(1.0, 0.05, n)
        for start in range(0, n, batch):
            chunk = []
            for i in range(start, min(n, start + batch)):
                at = t0 + timedelta(seconds=60 * r + 60 * i / n)
                station, quantity = pairs[i]
                chunk.append(Reading(station, quantity, round(typical[i] * noise[i], 1), at, at))
            c0, w0 = time.process_time(), time.perf_counter()
            engine.process(chunk)
            if r > 0:
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
                readings_timed += len(chunk)
    return {
        "sensors": n, "stations": len(stations), "batch": min(batch, n),
        "batches_timed": len(cpu),
        "cpu_ms_per_batch_p50": round(float(np.median(cpu)) * 1000, 1),
        "ms_per_batch_p50": round(float(np.median(wall)) * 1000, 1),
        "ms_per_batch_max": round(max(wall) * 1000, 1),
        "us_per_reading": round(sum(cpu) / readings_timed * 1e6, 2),
        "readings_s_one_core": round(readings_timed / sum(cpu)),
        "engine_mb": round(adopted_mb - base_mb, 1),
        "peak_rss_mb": round(procstat.peak_rss_mb() or 0.0, 1),
        "base_rss_mb": round(base_mb, 1),
        "engine_peak_mb": round((procstat.peak_rss_mb() or 0.0) - base_mb, 1),
    }  # fmt: skip


async def run_size(sensors: int, batch: int, rounds: int) -> dict[str, float | int]:
    """:func:`measure` in a fresh process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hanoi_ioc.bench.engine_cost", str(sensors), str(batch),
        str(rounds), stdout=subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        msg = f"the engine measurement for {sensors} sensors failed (exit {proc.returncode})"
        raise RuntimeError(msg)
    result: dict[str, float | int] = json.loads(out)
    return result


def main(argv: list[str] | None = None) -> int:
    """Measure one size and print the figures as JSON."""
    sensors, batch, rounds = (int(a) for a in (argv or sys.argv[1:])[:3])
    print(json.dumps(measure(sensors, batch, rounds)), flush=True)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
