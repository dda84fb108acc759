"""The bench run: private services up, the bases, the pipeline steps, memory, engine, fan-out.

Every phase is bounded: each pipeline step publishes for ``step_s`` and waits at most
``drain_s`` for processing to decide what was stored; the whole run has ``max_total_s``, and a
phase that would pass it is skipped and listed under ``skipped``. Progress goes to
``progress`` (stderr), one line a phase.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from hanoi_ioc.bench import procstat
from hanoi_ioc.bench.bases import broker_rate, copy_rate
from hanoi_ioc.bench.driver import offer
from hanoi_ioc.bench.engine_cost import run_size
from hanoi_ioc.bench.fanout import fan_out
from hanoi_ioc.bench.options import BenchOptions
from hanoi_ioc.bench.probes import AlertProbe, FeedWatch, cancel
from hanoi_ioc.bench.report import Report
from hanoi_ioc.bench.services import (
    INSTANCE,
    PROBE,
    PUBLISHER,
    SUBSCRIBER,
    TOKEN,
    PrivateStack,
    probe_station,
)

__all__ = ["run_bench"]


@dataclass
class _Progress:
    out: TextIO
    started: float = field(default_factory=time.monotonic)
    cap_s: float = 0.0

    def say(self, text: str) -> None:
        self.out.write(f"[bench {time.monotonic() - self.started:6.1f} s] {text}\n")
        self.out.flush()

    def left(self) -> float:
        return self.cap_s - (time.monotonic() - self.started)


@dataclass
class _Cpu:
    """CPU seconds of the stack's processes over a window, as % of one core."""

    stack: PrivateStack
    first: dict[str, float] = field(default_factory=dict)
    busy0: float = 0.0
    stolen0: float = 0.0
    wall0: float = 0.0

    def _pids(self) -> dict[str, list[int]]:
        groups = {name: [s.pid] for name, s in self.stack.services.items()}
        if self.stack.broker is not None and self.stack.broker.pid_file.exists():
            groups["broker"] = [int(self.stack.broker.pid_file.read_text().split()[0])]
        if self.stack.pg is not None:
            master = int((self.stack.pg.data_dir / "postmaster.pid").read_text().split()[0])
            groups["postgres"] = [master, *procstat.child_pids(master)]
        groups["bench"] = [os.getpid()]
        return groups

    def _read(self) -> dict[str, float]:
        return {name: sum(procstat.cpu_s(p) or 0.0 for p in pids)
                for name, pids in self._pids().items()}  # fmt: skip

    def begin(self) -> None:
        self.first = self._read()
        self.busy0 = procstat.busy_cores_s()
        self.stolen0 = procstat.stolen_cores_s()
        self.wall0 = time.monotonic()

    def end(self, load_cpu_s: float) -> tuple[dict[str, int], dict[str, float]]:
        """% of one core per process group over the window, and the CPU seconds."""
        now = self._read()
        used = {name: max(0.0, now[name] - self.first.get(name, 0.0)) for name in now}
        used["load"] = load_cpu_s
        used["other"] = max(0.0, procstat.busy_cores_s() - self.busy0 - sum(used.values()))
        used["stolen"] = max(0.0, procstat.stolen_cores_s() - self.stolen0)
        wall = max(time.monotonic() - self.wall0, 1e-9)
        return {name: round(100 * v / wall) for name, v in used.items()}, used


async def _bases(stack: PrivateStack, options: BenchOptions, say: _Progress) -> dict[str, Any]:
    users = ((PUBLISHER, stack.secret(PUBLISHER)), (SUBSCRIBER, stack.secret(SUBSCRIBER)))
    broker = await broker_rate(stack.mqtt_port, users, options.base_s)
    say.say(f"base: broker publish→subscribe {broker['messages_s']:,.0f} msgs/s "
            f"({broker['readings_s']:,.0f} readings/s)")  # fmt: skip
    copy = await asyncio.to_thread(copy_rate, stack.database_url, options.base_s)
    say.say(f"base: PostgreSQL COPY {copy['rows_s']:,.0f} rows/s")
    return {"broker": broker, "copy": copy}


async def _drain(watch: FeedWatch, probe: AlertProbe, start: float, end: float,
                 limit_s: float) -> None:  # fmt: skip
    """Wait until processing decided everything stored and the probes' alerts are in."""
    deadline = time.monotonic() + limit_s
    head, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        if watch.head != head:
            head, since = watch.head, time.monotonic()
        settled = time.monotonic() - since >= 1.0
        if settled and watch.position >= watch.head and not probe.pending(start, end):
            return
        await asyncio.sleep(0.2)


async def _step(stack: PrivateStack, options: BenchOptions, watch: FeedWatch,
                probe: AlertProbe, offered: float, say: _Progress) -> dict[str, Any]:  # fmt: skip
    cpu = _Cpu(stack)
    cpu.begin()
    start = time.time()
    injecting = asyncio.create_task(probe.inject(options.step_s, options.probes_per_s))
    load = await offer(stack.mqtt_port, stack.secrets_dir, options.stations, offered,
                       options.step_s)  # fmt: skip
    await injecting
    end = time.time()
    undecided_at_end = watch.undecided()
    await _drain(watch, probe, start, end, min(options.drain_s, max(5.0, say.left() - 60)))
    step: dict[str, Any] = {"offered": offered, "seconds": options.step_s, "load": load,
                            "undecided_at_publish_end": undecided_at_end}  # fmt: skip
    step |= watch.window(start, end)
    step |= _rates(step, float(load.get("elapsed_s", 0.0)))
    step["alerts"] = probe.window(start, end)
    step["cpu_pct"], used = cpu.end(float(load.get("cpu_s", 0.0)))
    # CPU per reading stored: what carries across machines better than a rate
    step["cpu_us_per_reading"] = {
        name: round(seconds * 1e6 / step["stored"], 1) if step["stored"] else None
        for name, seconds in used.items() if name not in ("other", "stolen")
    }  # fmt: skip
    acked = float(load.get("achieved_readings_s", 0.0)) * float(load.get("elapsed_s", 0.0))
    limit = max(2.0, 0.1 * options.step_s)
    last = step["last_decision_after_s"]
    step["kept_up"] = bool(step["undecided"] == 0 and last is not None and last <= limit
                           and step["decided"] >= 0.95 * acked)  # fmt: skip
    stack.check_alive()
    return step


def _rates(step: dict[str, Any], publish_s: float) -> dict[str, int]:
    """Readings/s stored and decided: over the load's publishing time + the drain after it.

    (The load's own time, not the window's: the probes start publishing before the load
    generator's processes are up.) A backlog drained after publishing counts against them.
    """
    out = {}
    for rate, count, tail in (("stored_rate", "stored", "last_commit_after_s"),
                              ("decided_rate", "decided", "last_decision_after_s")):  # fmt: skip
        span = publish_s + max(0.0, step[tail] or 0.0)
        out[rate] = round(step[count] / span) if step[count] and span > 0 else 0
    return out


def _sustained(report: Report) -> dict[str, Any]:
    steps = report["pipeline"]
    kept = [s for s in steps if s["kept_up"]]
    best = max(kept, key=lambda s: s["decided_rate"]) if kept else None
    rate = best["decided_rate"] if best else 0
    broker = report["bases"].get("broker", {}).get("readings_s") or 0
    copy = report["bases"].get("copy", {}).get("rows_s") or 0
    return {
        "readings_s": rate, "offered": best["offered"] if best else None,
        "ceiling_readings_s": max((s["decided_rate"] for s in steps), default=0),
        "vs_broker": round(rate / broker, 3) if broker else None,
        "vs_copy": round(rate / copy, 3) if copy else None,
    }  # fmt: skip


async def _pipeline(stack: PrivateStack, options: BenchOptions, report: Report,
                    say: _Progress) -> None:  # fmt: skip
    watch = FeedWatch(stack.database_url, INSTANCE, probe_keys=await stack.probe_keys())
    watching = asyncio.create_task(watch.run())
    probe = AlertProbe(stack.api_url.replace("http://", "ws://") + "/ws", TOKEN,
                       stack.mqtt_port, PROBE, stack.secret(PROBE),
                       [probe_station(i) for i in range(options.probe_stations)])  # fmt: skip
    await asyncio.to_thread(probe.connect)
    listening = asyncio.create_task(probe.listen())
    try:
        async with asyncio.timeout(30):
            await probe.subscribed.wait()
        for offered in options.loads:
            if say.left() < options.step_s + 30:
                report["skipped"].append(f"pipeline step {offered:,.0f} readings/s")
                continue
            say.say(f"pipeline: offering {offered:,.0f} readings/s for {options.step_s:g} s")
            step = await _step(stack, options, watch, probe, offered, say)
            report["pipeline"].append(step)
            say.say(
                f"  published {step['load'].get('achieved_readings_s', 0):,.0f}/s, stored "
                f"{step['stored_rate']:,}/s, decided {step['decided_rate']:,}/s, undecided "
                f"{step['undecided']:,}; p99 commit "
                f"{step['publish_to_commit_ms'].get('p99', '–')} ms, decision "
                f"{step['publish_to_decision_ms'].get('p99', '–')} ms, alert on WS "
                f"{step['alerts']['publish_to_alert_ws_ms'].get('p99', '–')} ms "
                f"({step['alerts']['alerts_seen']}/{step['alerts']['fired']} alerts)"
            )
        report["feed_gaps"] = watch.gaps
    finally:
        await cancel(listening)
        await cancel(watching)
        probe.close()


async def _fanout(stack: PrivateStack, options: BenchOptions, report: Report,
                  say: _Progress) -> None:  # fmt: skip
    ws_url = stack.api_url.replace("http://", "ws://") + "/ws"
    for clients in options.fanout_clients:
        if say.left() < 60:
            report["skipped"].append(f"fan-out to {clients} clients")
            continue
        say.say(f"fan-out: {clients} WebSocket clients, {options.fanout_events} events")
        result = await fan_out(ws_url, TOKEN, stack.database_url, clients, options.fanout_events)
        report["fanout"].append(result)
        say.say(f"  delivered {result.get('delivered')}, lost {result.get('lost')}, to every "
                f"client max {result.get('to_all_clients_ms', {}).get('max', '–')} ms")  # fmt: skip


async def _engine(options: BenchOptions, report: Report, say: _Progress) -> None:
    for sensors in options.engine_sensors:
        if say.left() < 20 + sensors / 2000:
            report["skipped"].append(f"engine with {sensors:,} sensors")
            continue
        say.say(f"engine: {sensors:,} sensors, batches of {options.engine_batch:,}")
        figures = await run_size(sensors, options.engine_batch, options.engine_rounds)
        report["engine"].append(figures)
        say.say(f"  {figures['ms_per_batch_p50']} ms per batch, {figures['us_per_reading']} µs "
                f"per reading, peak RSS {figures['peak_rss_mb']} MB")  # fmt: skip


async def run_bench(options: BenchOptions, command: str = "",
                    progress: TextIO = sys.stderr) -> Report:  # fmt: skip
    """Run every measurement of ``options`` and return the report."""
    say = _Progress(progress, cap_s=options.max_total_s)
    report: Report = {
        "version": 1, "preset": options.preset, "command": command,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": procstat.machine(), "options": _options(options), "bases": {},
        "pipeline": [], "engine": [], "fanout": [], "memory_mb": {}, "skipped": [],
    }  # fmt: skip
    fan_max = max(options.fanout_clients, default=10)
    stack = PrivateStack(options.stations, options.probe_stations, fan_max, options.keep)
    say.say(f"private PostgreSQL and Mosquitto in {stack.root}")
    async with stack:
        report["bases"] = await _bases(stack, options, say)
        await stack.prepare_database()
        say.say(f"registered {options.stations:,} load stations and {options.probe_stations} "
                "probe stations; starting ingest, processing, API")  # fmt: skip
        await asyncio.to_thread(stack.start_services)
        await _pipeline(stack, options, report, say)
        report["memory_mb"] = stack.peak_memory_mb()
        await _fanout(stack, options, report, say)
    await _engine(options, report, say)
    report["sustained"] = _sustained(report)
    report["elapsed_s"] = round(time.monotonic() - say.started, 1)
    return report


def _options(options: BenchOptions) -> dict[str, Any]:
    out = asdict(options)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}
