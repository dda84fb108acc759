"""``python -m simulators`` / ``hanoi-ioc simulate``: run a scenario, backfill, or load.

Examples::

    python -m simulators --scenario demo --speed 60
    python -m simulators --scenario demo --speed 60 --resume-file .hanoi/simulator.json
    python -m simulators --scenario storm-2025-09-30 --speed max --truth-file truth.jsonl
    python -m simulators --scenario quiet-week --duration 1d --speed max --stations 'aq-*'
    python -m simulators --load --load-stations 5000 --load-rate 3000 --load-shape senml
    python -m simulators --export-registry registry.json
"""

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from contract import encode_registry
from simulators.clock import SimClock
from simulators.errors import SimulatorError
from simulators.faults import FaultKind
from simulators.fleet import hanoi_fleet, select_stations
from simulators.generator import generate
from simulators.load import LoadPlan, load_fleet, run_load
from simulators.publisher import Publisher
from simulators.resume import ResumePoint, RunIdentity, load_point, save_point
from simulators.scenario import Scenario, list_scenarios, load_scenario, parse_duration
from simulators.settings import SimulatorSettings
from simulators.truth import TruthFile

__all__ = ["main"]

logger = logging.getLogger("simulators")

_RATE_FIELDS = {
    FaultKind.STUCK: "fault_stuck_per_day",
    FaultKind.DRIFT: "fault_drift_per_day",
    FaultKind.SPIKE: "fault_spike_rate",
    FaultKind.DROPOUT: "fault_dropout_rate",
    FaultKind.OFFLINE: "fault_offline_per_day",
    FaultKind.DUPLICATE: "fault_duplicate_rate",
    FaultKind.OUT_OF_ORDER: "fault_out_of_order_rate",
    FaultKind.CLOCK_SKEW: "fault_clock_skew_per_day",
    FaultKind.MALFORMED: "fault_malformed_rate",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hanoi-ioc simulate",
        description="Simulate Hanoi's sensor fleet over MQTT (Mô phỏng mạng cảm biến Hà Nội).",
    )
    p.add_argument(
        "--scenario", help=f"bundled name ({', '.join(list_scenarios())}) or a .yaml path"
    )
    p.add_argument("--list-scenarios", action="store_true", help="list bundled scenarios and exit")
    p.add_argument("--speed", help="simulated seconds per real second, or 'max' (backfill)")
    p.add_argument("--seed", type=int)
    p.add_argument("--start", help="ISO time with offset, or now / now-6h (default: scenario's)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--end", help="ISO time with offset")
    group.add_argument("--duration", help="e.g. 90m, 6h, 2d (default: scenario's)")
    p.add_argument("--mqtt-url", help="mqtt://[user:pass@]host:port (env SIM_MQTT_URL/MQTT_URL)")
    p.add_argument(
        "--credentials-dir",
        type=Path,
        help="broker passwords, one file per device/gateway (env SIM_CREDENTIALS_DIR)",
    )
    p.add_argument("--topic-root")
    p.add_argument("--truth-file", type=Path, help="append ground truth here (JSON lines)")
    p.add_argument(
        "--resume-file",
        type=Path,
        help="go on where the last run of this scenario stopped; kept up to date here",
    )
    p.add_argument("--stations", help="comma-separated ids or patterns, e.g. 'aq-*,fd-thai-ha'")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help=f"override a fault rate; kinds: {', '.join(k.value for k in FaultKind)}",
    )
    p.add_argument("--no-faults", action="store_true", help="switch every fault off")
    p.add_argument("--dry-run", action="store_true", help="generate without a broker; count")
    p.add_argument(
        "--export-registry",
        type=Path,
        metavar="PATH",
        help="write the fleet's registry document (load fleet with --load) and exit",
    )
    p.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    load = p.add_argument_group("load mode")
    load.add_argument("--load", action="store_true", help="benchmark load instead of a scenario")
    load.add_argument("--load-stations", type=int, default=1000)
    load.add_argument("--load-rate", type=float, default=1000.0, help="messages per second")
    load.add_argument("--load-shape", choices=["station", "senml"], default="station")
    load.add_argument("--load-processes", type=int, default=0, help="0 = as many as needed")
    load.add_argument("--load-duration", default="30s")
    load.add_argument("--load-report", type=Path, help="write the report as JSON here")
    return p


def _settings(args: argparse.Namespace) -> SimulatorSettings:
    given: dict[str, object] = {}
    for name in (
        "scenario", "speed", "seed", "topic_root", "truth_file", "mqtt_url", "credentials_dir",
        "resume_file",
    ):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            given[name] = value
    if args.stations:
        given["stations"] = tuple(p.strip() for p in args.stations.split(",") if p.strip())
    if args.no_faults:
        given["faults_enabled"] = False
    for item in args.fault:
        kind, _, rate = item.partition("=")
        try:
            given[_RATE_FIELDS[FaultKind(kind.strip())]] = float(rate)
        except ValueError:
            msg = f"--fault {item!r}: expected KIND=RATE with KIND one of {list(_RATE_FIELDS)}"
            raise SimulatorError(msg) from None
    return SimulatorSettings(**given)  # type: ignore[arg-type]


def _period(
    args: argparse.Namespace,
    settings: SimulatorSettings,
    scenario: Scenario,
    anchor: datetime | None = None,
) -> tuple[datetime, datetime | None]:
    now = datetime.now(UTC)
    start = anchor or settings.start or scenario.default_start(now)
    if args.start:
        start = Scenario("cli", "", "", "", args.start).default_start(now)
    if args.end:
        end: datetime | None = datetime.fromisoformat(args.end)
    elif args.duration:
        end = start + timedelta(seconds=parse_duration(args.duration))
    elif settings.end is not None:
        end = settings.end
    elif settings.duration_s is not None:
        end = start + timedelta(seconds=settings.duration_s)
    else:
        end = start + timedelta(seconds=scenario.duration_s) if scenario.duration_s else None
    if end is not None and (end.utcoffset() is None or end <= start):
        msg = f"the end ({end.isoformat()}) must carry an offset and come after the start"
        raise SimulatorError(msg)
    if end is None and math.isinf(settings.speed):
        msg = "--speed max needs an end (--end or --duration, or a scenario with a duration)"
        raise SimulatorError(msg)
    return start, end


def _rates(settings: SimulatorSettings, scenario: Scenario):  # type: ignore[no-untyped-def]
    if not settings.faults_enabled:
        return type(scenario.fault_rates)()
    overrides = {f.removeprefix("fault_"): getattr(settings, f) for f in _RATE_FIELDS.values()}
    return scenario.fault_rates.with_overrides(**overrides)


async def _simulate(args: argparse.Namespace, settings: SimulatorSettings) -> int:
    fleet = select_stations(hanoi_fleet(), settings.stations)
    if not fleet:
        msg = f"no station matches {list(settings.stations)}"
        raise SimulatorError(msg)
    scenario = load_scenario(settings.scenario, hanoi_fleet())
    identity = RunIdentity(settings.scenario, settings.seed, settings.topic_root,
                           settings.stations)  # fmt: skip
    point = _resume_point(args, settings, identity)
    start, end = _period(args, settings, scenario, point.start if point else None)
    rates = _rates(settings, scenario)
    reached = point.reached if point is not None else start
    stream = generate(
        scenario, fleet, start, end, settings.seed, faults=rates, root=settings.topic_root,
        resume_at=reached if point is not None else None,
    )  # fmt: skip
    if point is not None:
        logger.info("resuming scenario %s at %s (its start: %s)", scenario.name,
                    reached.isoformat(), start.isoformat())  # fmt: skip
        if end is not None and reached >= end:
            logger.info("the run had ended at %s: nothing left to publish", end.isoformat())
            return 0
    logger.info(
        "scenario %s (%s) for %d stations from %s to %s, speed %s, seed %d",
        scenario.name,
        scenario.title_en,
        len(fleet),
        start.isoformat(),
        end.isoformat() if end else "(open)",
        settings.speed,
        settings.seed,
    )
    with contextlib.ExitStack() as stack:
        truth = stack.enter_context(TruthFile(settings.truth_file)) if settings.truth_file else None
        if args.dry_run:
            return _dry_run(stream, truth)
        checkpoint = _checkpoint(settings.resume_file, identity, start)
        if checkpoint is not None:
            checkpoint(reached)
        publisher = Publisher(settings, fleet, SimClock(reached, settings.speed),
                              truth_file=truth, checkpoint=checkpoint)  # fmt: skip
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, publisher.stop)
        stats = await publisher.run(stream)
    logger.info(
        "done: %d acknowledged in %.1f s (%.0f/s), %d dropped, %d truth records",
        stats.acked,
        stats.elapsed_s,
        stats.rate_per_s,
        stats.dropped,
        stats.truth_records,
    )
    return 0


def _resume_point(
    args: argparse.Namespace, settings: SimulatorSettings, identity: RunIdentity
) -> ResumePoint | None:
    """Where the last run stopped (not when a start is given, nor for a dry run)."""
    if settings.resume_file is None or args.dry_run or args.start or settings.start:
        return None
    return load_point(settings.resume_file, identity)


def _checkpoint(
    path: Path | None, identity: RunIdentity, start: datetime
) -> Callable[[datetime], None] | None:
    """What records the run's mark in the resume file (None without one)."""
    if path is None:
        return None

    def record(reached: datetime) -> None:
        try:
            save_point(path, ResumePoint(identity, start, reached))
        except OSError as exc:
            logger.warning("resume file %s not written: %s", path, exc)

    return record


def _dry_run(stream, truth: TruthFile | None) -> int:  # type: ignore[no-untyped-def]
    counts: dict[str, int] = {}
    for item in stream:
        counts[item.kind.value] = counts.get(item.kind.value, 0) + 1
        if truth is not None and item.truth is not None:
            truth.write(item.truth)
    logger.info("dry run: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def _load(args: argparse.Namespace, settings: SimulatorSettings) -> int:
    plan = LoadPlan(
        settings.broker,
        args.load_stations,
        args.load_rate,
        parse_duration(args.load_duration),
        args.load_shape,
        args.load_processes,
        settings.topic_root,
        credentials_dir=settings.credentials_dir,
    )
    report = run_load(plan)
    if args.load_report:
        args.load_report.write_text(json.dumps(report.as_dict(), indent=1, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the simulator CLI; returns the process exit code."""
    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    try:
        if args.list_scenarios:
            for name in list_scenarios():
                s = load_scenario(name, hanoi_fleet())
                sys.stdout.write(f"{name:18} {s.title_vi} / {s.title_en}\n")
            return 0
        settings = _settings(args)
        if args.export_registry:
            stations = load_fleet(args.load_stations) if args.load else hanoi_fleet()
            args.export_registry.write_bytes(encode_registry(stations))
            logger.info("wrote %d stations to %s", len(stations), args.export_registry)
            return 0
        if args.load:
            return _load(args, settings)
        return asyncio.run(_simulate(args, settings))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        logger.error("configuration error / lỗi cấu hình: %s", problems)
        return 2
    except (SimulatorError, ValueError, OSError) as exc:
        logger.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
