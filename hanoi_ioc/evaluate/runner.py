"""Running one scenario through the real pipeline (the async shell of ``evaluate``).

Simulator → MQTT broker → ingest → PostgreSQL, and broker → processing → alerts, exactly as
in production: the services are the real :class:`~ingest.service.IngestService` and
:class:`~processing.service.ProcessingService` on a real broker and database, the registry
is the simulated fleet, and the simulator's :class:`~simulators.Publisher` backfills the
scenario at ``--speed max`` with its ground truth written to a JSON-lines truth file.

Devices keep pace with the simulated clock (one message queued and one in flight each), so
the interleaving processing sees is the one it would see live; only the clock runs faster.
Completion is proved by counters, not by waiting: the stream handed to the publisher counts
every telemetry message it yields; the run is over when processing has acknowledged (after
committing its alerts) at least that many telemetry messages, ingest has received as many
and holds no record unwritten, and neither holds anything buffered. While the run is going
the stream also applies backpressure: the simulator stops generating when processing lags
more than ``max_backlog`` messages behind, so the broker's queue stays bounded.

Old periods: a scenario of 2016 is "nine years old" to services that quarantine stale
measurement times (400 days by default); both services are configured to accept any age
and to keep the data, since evaluating history is the point.

Spin-up: a running system has learnt its baselines long before anything happens, so by
default a quiet ``warmup_s`` of the same city (the scenario's background weather, no
scripted events, no faults, no labels) is played just before the scenario's start through
the same pipeline; only alerts raised from the start on are scored. ``warmup_s = 0``
evaluates a cold start instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

import psycopg

from contract import Station, TruthEvent
from db import register_stations, upgrade
from hanoi_ioc.credentials import CredentialStore
from hanoi_ioc.evaluate.panels import select_panels, series_keys, upstream_gauges
from hanoi_ioc.evaluate.records import RunResult
from hanoi_ioc.evaluate.store import read_alerts, read_series
from ingest.service import IngestService
from ingest.settings import IngestSettings
from processing.service import ProcessingService
from processing.settings import ProcessingSettings
from simulators import (
    Outgoing,
    OutgoingKind,
    Publisher,
    SimClock,
    SimulatorSettings,
    TruthFile,
    generate,
    hanoi_fleet,
    load_scenario,
    read_truth_file,
    select_stations,
)
from simulators.faults import FaultRates

__all__ = ["BrokerUsers", "EvaluationError", "RunSpec", "run_scenario"]

logger = logging.getLogger(__name__)

_ANY_AGE_DAYS: Final = 36500.0  # a century: history is what is evaluated
_DEFAULT_DURATION_S: Final = 6 * 3600.0  # for scenarios that run until stopped (demo)
_STALL_S: Final = 300.0  # no counter moved for this long: the run is broken
_PACE: Final = 1  # messages queued, and in flight, per simulated device


class EvaluationError(RuntimeError):
    """A scenario could not be run or did not complete."""


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What to run.

    Args:
        scenario: bundled scenario name or a YAML path.
        seed: simulator seed.
        start: simulated start (default: the scenario's).
        max_duration_s: cut longer scenarios to their first this-many seconds.
        stations: station id patterns to simulate (default: the whole fleet).
        faults: inject the scenario's sensor faults.
        warmup_s: quiet spin-up played before the start (baselines learnt; not scored).
        max_backlog: telemetry messages processing may lag behind the simulator.
    """

    scenario: str
    seed: int = 0
    start: datetime | None = None
    max_duration_s: float | None = None
    stations: tuple[str, ...] = ()
    faults: bool = True
    warmup_s: float = 86400.0
    max_backlog: int = 50_000


@dataclass(slots=True)
class _Tally:
    telemetry: int = 0
    refused: int = 0
    """Telemetry the broker refused for good (over its size limit): never reaches ingest."""

    @property
    def expected(self) -> int:
        """The telemetry messages ingest must receive."""
        return self.telemetry - self.refused


def _counted(
    stream: Iterator[Outgoing], tally: _Tally, processed: Callable[[], int], max_backlog: int
) -> Iterator[Outgoing]:
    """The stream, counting telemetry and pausing while processing lags too far behind.

    It runs in the publisher's worker thread (the publisher pulls the stream with
    ``asyncio.to_thread``), so waiting here never blocks the event loop.
    """
    for item in stream:
        if item.kind is OutgoingKind.TELEMETRY:
            tally.telemetry += 1
            while tally.telemetry - processed() > max_backlog:
                time.sleep(0.05)
        yield item


def _period(
    spec: RunSpec, scenario_start: datetime, duration_s: float | None
) -> tuple[datetime, datetime]:
    start = spec.start or scenario_start
    length = duration_s or _DEFAULT_DURATION_S
    if spec.max_duration_s is not None:
        length = min(length, spec.max_duration_s)
    end = start + timedelta(seconds=length)
    now = datetime.now(UTC).replace(microsecond=0)
    if end > now:  # a backfill never publishes the future
        end = now
    if end <= start:
        msg = f"{spec.scenario}: nothing to run between {start} and {end}"
        raise EvaluationError(msg)
    return start, end


async def _drained(ingest: IngestService, processing: ProcessingService, tally: _Tally) -> None:
    """Return once everything published was stored and processed (counters, not sleeps)."""
    last: tuple[int, ...] = ()
    moved = time.monotonic()
    while True:
        seen = ingest.counts["received_messages"] - ingest.counts["status_messages"]
        pending = ingest.counts["pending_records"]
        buffered = ingest.consumer.buffered
        lag = await processing.lag()
        done = lag.position
        if seen >= tally.expected and pending == 0 and not buffered and lag.readings == 0:
            return
        now = (done, seen, pending, buffered)
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > _STALL_S:
            msg = (
                f"stalled: published {tally.telemetry} ({tally.refused} refused by the broker), "
                f"ingest received {seen} with {pending} records pending, processing at feed "
                f"position {done}"
            )
            raise EvaluationError(msg)
        await asyncio.sleep(0.1)


@dataclass(frozen=True, slots=True)
class BrokerUsers:
    """The users of an authenticating broker, and how to make it take up new ones.

    Args:
        store: its credential store (grants written for a root filter covering the run's).
        reload: returns once the broker authenticates against the store as it is now.
    """

    store: CredentialStore
    reload: Callable[[], object]


def _services(
    database_url: str,
    mqtt_url: str,
    protocol: Literal["5", "3.1.1"],
    root: str,
    name: str,
    broker: BrokerUsers | None,
) -> tuple[IngestService, ProcessingService]:
    def login(service: str) -> dict[str, object]:
        if broker is None:
            return {}
        user = broker.store.issue_service(service, name[:40])
        return {"mqtt_password_file": broker.store.secret_file(user)}

    ingest = IngestService(
        IngestSettings(
            database_url=database_url, mqtt_url=mqtt_url, mqtt_protocol=protocol,
            topic_root=root, instance=name[:40], max_age_days=_ANY_AGE_DAYS,
            retention_days=int(_ANY_AGE_DAYS), maintenance_interval_s=600.0,
        ).model_copy(update=login("ingest"))
    )  # fmt: skip
    processing = ProcessingService(
        ProcessingSettings(
            database_url=database_url, instance=name[:40], escalation_after_s=1e9,
            snapshot_interval_s=600.0, feed_poll_s=0.1,
        )
    )  # fmt: skip
    return ingest, processing


async def _publish(
    spec: RunSpec,
    fleet: list[Station],
    period: tuple[datetime, datetime],
    settings: SimulatorSettings,
    truth: Path,
    tally: _Tally,
    processed: Callable[[], int],
) -> None:
    scenario = load_scenario(spec.scenario, hanoi_fleet())
    rates = scenario.fault_rates if spec.faults else FaultRates()
    root = settings.topic_root
    stream: Iterator[Outgoing] = generate(scenario, fleet, period[0], period[1], spec.seed,
                                          faults=rates, root=root)  # fmt: skip
    if spec.warmup_s > 0:
        quiet = dataclasses.replace(scenario, events=(), scripted_faults=(),
                                    fault_rates=FaultRates())  # fmt: skip
        spin_up = generate(quiet, fleet, period[0] - timedelta(seconds=spec.warmup_s),
                           period[0], spec.seed, faults=FaultRates(), root=root)  # fmt: skip
        # No labels from the spin-up: nothing there is scored.
        unlabelled = (item for item in spin_up if item.kind is not OutgoingKind.TRUTH)
        stream = itertools.chain(unlabelled, stream)
    with TruthFile(truth) as truth_file:
        # Live devices keep pace with the clock: one message queued and one in flight per
        # device keeps them within two reporting intervals of each other, as processing
        # would see them live (deep per-device queues would let one device's scheduling
        # hiccup look like minutes of silence at backfill speed).
        publisher = Publisher(settings, fleet, SimClock(period[0], math.inf),
                              truth_file=truth_file, window=_PACE)  # fmt: skip
        stats = await publisher.run(_counted(stream, tally, processed, spec.max_backlog))
    tally.refused = stats.refused
    logger.info("%s: published %d telemetry messages (%d acknowledged by the broker, %d refused "
                "by it as oversized)", spec.scenario, tally.telemetry, stats.acked,
                stats.refused)  # fmt: skip


async def run_scenario(
    spec: RunSpec,
    *,
    database_url: str,
    mqtt_url: str,
    topic_root: str,
    work_dir: Path,
    mqtt_protocol: Literal["5", "3.1.1"] = "5",
    broker: BrokerUsers | None = None,
) -> RunResult:
    """Run one scenario through the real services and collect what they produced.

    Args:
        spec: what to run.
        database_url: a fresh (empty or migrated) database of its own.
        mqtt_url: the broker.
        topic_root: a topic root no one else uses.
        work_dir: where the truth file goes.
        mqtt_protocol: ``5`` or ``3.1.1``.
        broker: the broker's users, where it authenticates: the services, the fleet's
            devices and the truth channel get theirs before anything connects.

    Raises:
        EvaluationError: on an empty period, or when the pipeline stalls.
    """
    started = time.monotonic()
    scenario = load_scenario(spec.scenario, hanoi_fleet())
    fleet = select_stations(hanoi_fleet(), spec.stations)
    if not fleet:
        msg = f"no station matches {list(spec.stations)}"
        raise EvaluationError(msg)
    period = _period(spec, scenario.default_start(datetime.now(UTC)), scenario.duration_s)
    await upgrade(database_url)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await register_stations(conn, fleet)
    name = f"eval-{topic_root.split('/')[0]}"
    ingest, processing = _services(database_url, mqtt_url, mqtt_protocol, topic_root, name, broker)
    credentials = None
    if broker is not None:
        broker.store.sync_registry(fleet, keep_secrets=True, revoke=False)
        broker.store.issue_operational("simulator")
        await asyncio.to_thread(broker.reload)
        credentials = broker.store.secrets_dir
    sim = SimulatorSettings(mqtt_url=mqtt_url, mqtt_protocol=mqtt_protocol,
                            topic_root=topic_root, speed=math.inf, seed=spec.seed,
                            outbox_size=_PACE, credentials_dir=credentials)  # fmt: skip
    tally = _Tally()
    truth = work_dir / "truth.jsonl"
    truth.unlink(missing_ok=True)
    logger.info("%s: %s → %s (after %.0f h of spin-up), %d stations, seed %d", spec.scenario,
                period[0].isoformat(), period[1].isoformat(), spec.warmup_s / 3600, len(fleet),
                spec.seed)  # fmt: skip
    async with ingest, processing:
        await ingest.consumer.wait_connected()
        async with asyncio.TaskGroup() as group:
            for service in (ingest, processing):
                group.create_task(service.run(), name=f"run:{type(service).__name__}")
            try:
                await _publish(spec, fleet, period, sim, truth, tally,
                               lambda: ingest.pipeline.counts["acked_messages"])  # fmt: skip
                await _drained(ingest, processing, tally)
            finally:
                ingest.stop()
                processing.stop()
    counters = {"ingest": ingest.stats(), "processing": processing.stats()}
    labels = tuple(read_truth_file(truth)) if truth.exists() else ()
    elapsed = time.monotonic() - started
    return await _collect(spec, scenario.title_vi, scenario.title_en, period, fleet, labels,
                          database_url, tally.telemetry, counters, elapsed)  # fmt: skip


async def _collect(
    spec: RunSpec,
    title_vi: str,
    title_en: str,
    period: tuple[datetime, datetime],
    fleet: list[Station],
    labels: tuple[TruthEvent, ...],
    database_url: str,
    published: int,
    counters: Mapping[str, Mapping[str, float | int | str]],
    elapsed_s: float,
) -> RunResult:
    stations: dict[str, Station] = {str(s.station_id): s for s in fleet}
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        # Alerts of the spin-up are not scored (nothing was labelled there), except those
        # still open when the scenario starts: carried over, they may detect what follows.
        alerts = [
            a if a.raised_at >= period[0] else dataclasses.replace(a, carried_over=True)
            for a in await read_alerts(conn)
            if a.raised_at >= period[0] or a.cleared_at is None or a.cleared_at >= period[0]
        ]
        panels = select_panels(labels, alerts, stations)
        upstream = upstream_gauges(stations)
        floods = {(x.station_id, "water_depth") for x in labels if x.kind == "flood"}
        rain = {(upstream[s], "rainfall") for s, _ in floods if s in upstream}
        series = await read_series(conn, series_keys(panels, floods | rain))
    return RunResult(
        spec.scenario, title_vi, title_en, spec.seed, period[0], period[1], stations, labels,
        tuple(alerts), series, published, counters, elapsed_s, spec.warmup_s,
    )  # fmt: skip
