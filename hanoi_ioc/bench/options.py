"""What a bench run measures, and how long each step may take."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Self

__all__ = ["BenchOptions", "Preset"]

Preset = Literal["full", "quick", "smoke"]


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """Sizes and time caps of one run (the ``full`` preset by default).

    Args:
        preset: the preset these options started from (reported).
        loads: offered loads of the pipeline steps, readings/s.
        step_s: publishing time of each pipeline step.
        drain_s: the longest wait, after a step, for processing to decide what was stored.
        stations: load-mode air stations (8 readings a message).
        probes_per_s: alert probes injected per second during a step.
        base_s: time of each base measurement (broker, COPY).
        engine_sensors: registry sizes of the engine measurement.
        engine_batch: readings per engine step (processing's ``PROC_BATCH_MAX_READINGS``).
        engine_rounds: readings per sensor fed to the engine (after one warm-up round).
        fanout_clients: WebSocket client counts of the fan-out measurement.
        fanout_events: alert events delivered to every client, per count.
        max_total_s: the whole run's cap; steps that would pass it are skipped (and said so).
        json_path: where to write the report as JSON.
        plots_dir: where to draw the plots.
        keep: keep the temporary directory (data, logs).
    """

    preset: Preset = "full"
    loads: tuple[float, ...] = (1000.0, 5000.0, 20000.0, 50000.0)
    step_s: float = 15.0
    drain_s: float = 60.0
    stations: int = 4000
    probes_per_s: float = 2.0
    base_s: float = 5.0
    engine_sensors: tuple[int, ...] = (1000, 10000, 100000)
    engine_batch: int = 20000
    engine_rounds: int = 3
    fanout_clients: tuple[int, ...] = (100, 1000)
    fanout_events: int = 5
    max_total_s: float = 1500.0
    json_path: Path | None = None
    plots_dir: Path | None = None
    keep: bool = False

    @classmethod
    def of(cls, preset: Preset) -> Self:
        """The options of a preset: ``full`` (~5 min), ``quick`` or ``smoke`` (~1 min)."""
        if preset == "quick":
            return cls(preset="quick", step_s=6.0, drain_s=30.0, base_s=2.0, engine_rounds=2,
                       fanout_events=3, max_total_s=420.0)  # fmt: skip
        if preset == "smoke":
            return cls(
                preset="smoke", loads=(400.0, 1600.0), step_s=3.0, drain_s=15.0, stations=100,
                probes_per_s=1.0, base_s=1.0, engine_sensors=(800,), engine_batch=2000,
                engine_rounds=2, fanout_clients=(10,), fanout_events=2, max_total_s=120.0,
            )  # fmt: skip
        return cls()

    def but(self, **changes: object) -> Self:
        """A copy with some options changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @property
    def probe_stations(self) -> int:
        """Probe stations needed: each raises one alert, once (cooldown)."""
        steps = len(self.loads) * self.step_s * self.probes_per_s
        return int(steps * 1.5) + 50
