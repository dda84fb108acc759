"""The at-least-once service shell that ingest and processing both run on.

A :class:`StreamService` owns a connection pool and an MQTT :class:`~stream.consumer.Consumer`
and runs a :class:`~stream.pipeline.Pipeline` — decode and validate each message once, batch
by size or age, hand each batch to :meth:`StreamService.handle`, acknowledge after it
commits — plus its periodic jobs (heartbeat, registry refresh, and the service's own), all in
one ``TaskGroup``. A subclass says what a batch means (ingest: write it; processing: decide
on it) and which jobs it adds; the shell does the rest the same way for both:

- entering it migrates the database (the strategy it was built with wins), opens the pool,
  loads the registry and connects to the broker — waiting, with backoff and a log line per
  attempt, for a database or broker that is not there yet;
- a message that makes validation or the handler raise is quarantined (``internal_error``,
  or ``storage_refused`` when the database refuses its content) and acknowledged: see
  :mod:`stream.pipeline`;
- :meth:`~StreamService.stop` finishes the pending batch, commits, acknowledges and returns
  from :meth:`~StreamService.run`, whose last act is a bounded final heartbeat;
- :func:`run_service` runs one until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Protocol, Self, TypeVar

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import ValidationError

from contract import Registry, RejectReason
from db import (
    Conn,
    DatabaseError,
    Pool,
    RefusedError,
    RegistryReader,
    Stats,
    StorageError,
    StrategyName,
    add_quarantine,
    heartbeat,
    translate,
    upgrade,
)
from stream.backoff import Backoff
from stream.batcher import Batch, Batcher
from stream.consumer import Consumer, Subscription
from stream.pipeline import Pipeline, run_every
from stream.quarantine import QuarantinePolicy, quarantine_records
from stream.sampler import QuarantineSampler, publisher_of
from stream.settings import StreamSettings
from stream.validate import Outcome, Quarantined, Validator, storable

__all__ = [
    "Job",
    "Service",
    "StreamService",
    "describe_invalid",
    "final_writes",
    "main",
    "run_service",
    "when_reachable",
]

logger = logging.getLogger(__name__)

_FINAL_WRITE_S: Final = 5.0
"""How long a stop waits for each final write (the last heartbeat, a last snapshot)."""
_STARTUP_BACKOFF_MAX_S: Final = 10.0
"""Longest wait between two attempts to reach the database at start."""
_POISON_DETAIL: Final = 500
_T = TypeVar("_T")


class Service(Protocol):
    """A long-running service: entered, run until stopped, left (ingest, processing)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def run(self) -> None:
        """Run until :meth:`stop`."""
        ...

    def stop(self) -> None:
        """Finish what is in hand, commit, and return from :meth:`run`."""
        ...


@dataclass(frozen=True, slots=True)
class Job:
    """A periodic job of a service (maintenance, snapshots, escalation …).

    Args:
        name: the task's name.
        interval_s: seconds between runs; a failed run is logged and tried next round.
        run: the job.
        at_stop: also run it once, bounded, when the service stops.
    """

    name: str
    interval_s: float
    run: Callable[[], Awaitable[object]]
    at_stop: bool = False


async def final_writes(jobs: Iterable[Job]) -> None:
    """Run the jobs that also run at stop, once each and the heartbeat last, each bounded.

    The last snapshot and counters, if the database is there to take them: a stop must end
    even when it is not (what cannot be written is logged, not raised).
    """
    for job in sorted((j for j in jobs if j.at_stop), key=lambda j: j.name == "heartbeat"):
        try:
            async with asyncio.timeout(_FINAL_WRITE_S):
                await job.run()
        except (TimeoutError, psycopg.Error, PoolTimeout) as exc:
            logger.warning("%s at stop not recorded: %s", job.name, exc)


class StreamService:
    """One instance of an at-least-once service (subclass it; see the module docstring).

    Args:
        settings: the instance's settings.
        subscriptions: MQTT topic filters (without the share prefix: added when the settings
            name a share group and the protocol is MQTT 5), with their retained-message rule.
        shared: which of ``subscriptions`` (by topic) go through the share group.
        pool_max: connections in the pool at most.
        keep_readings: the validator also gives :class:`~contract.Reading` values.
        max_messages: messages per batch at most.
        queue_batches: full batches waiting for :meth:`handle`.
        concurrency: batches handled at once (acknowledged in arrival order anyway).
        configure: pool hook run on each new connection.
    """

    service: str = "stream"

    def __init__(
        self,
        settings: StreamSettings,
        *,
        subscriptions: Sequence[Subscription],
        shared: Sequence[str] | None = None,
        pool_max: int = 3,
        keep_readings: bool = True,
        max_messages: int | None = None,
        queue_batches: int = 2,
        concurrency: int = 1,
        configure: Callable[[Conn], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.service = settings.service
        self._registry_reader = RegistryReader()
        # A database that went away is asked again by every retried write (each asks the
        # pool for a connection, which then tries to connect at once): the pool's own
        # reconnection backoff grows without a cap, and after a long outage it would wait
        # a minute or more after the database was back.
        self.pool: Pool = AsyncConnectionPool(
            settings.database_url, min_size=1, max_size=pool_max, open=False,
            configure=configure, name=f"{settings.service}-{settings.instance}",
            timeout=settings.pool_timeout_s, reconnect_timeout=settings.reconnect_timeout_s,
        )  # fmt: skip
        share = ""
        if settings.share_group and settings.mqtt_protocol == "5":
            share = f"$share/{settings.share_group}/"
        through_share = {s.topic for s in subscriptions} if shared is None else set(shared)
        has_password = settings.mqtt_password_file is not None or settings.mqtt_password
        self.consumer = Consumer(
            settings.mqtt_url,
            client_id=settings.client_id,
            subscriptions=[
                dataclasses.replace(s, topic=share + s.topic) if s.topic in through_share else s
                for s in subscriptions
            ],
            protocol=settings.mqtt_protocol,
            session_expiry_s=settings.session_expiry_s,
            receive_maximum=settings.receive_maximum,
            buffer_max_bytes=int(settings.buffer_max_mb * 1024 * 1024),
            username=settings.broker_username if has_password or settings.mqtt_username else None,
            password=settings.broker_password if has_password else None,
            ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
        )
        self.quarantine_policy = QuarantinePolicy(
            settings.quarantine_payload_prefix_bytes, settings.quarantine_topic_prefix_chars
        )
        self.validator = Validator(
            Registry({}),  # replaced by the database's on entry
            root=settings.topic_root,
            max_future_s=settings.max_future_s,
            max_age_s=settings.max_age_days * 86400.0,
            keep_readings=keep_readings,
            sampler=QuarantineSampler(
                rate_per_min=settings.quarantine_rate_per_min, burst=settings.quarantine_burst
            ),
        )
        self.pipeline = Pipeline(
            self.consumer,
            self.validator,
            Batcher(
                max_readings=settings.batch_max_readings,
                max_messages=max_messages or settings.receive_maximum,
                max_age_s=settings.batch_max_age_s,
            ),
            self.handle,
            queue_batches=queue_batches,
            on_outcome=self.on_outcome,
            shutdown_grace_s=settings.shutdown_grace_s,
            concurrency=concurrency,
            on_poison=self.quarantine_poison,
            retry_max_s=settings.retry_max_s,
        )
        self.strategy: StrategyName | None = None
        self.started_at = datetime.now(UTC)
        self.counts: Counter[str] = Counter()

    # -- what a service adds --------------------------------------------------------------

    async def handle(self, batch: Batch) -> None:
        """Commit what ``batch`` means; raise :class:`~db.StorageError` to have it retried."""
        raise NotImplementedError

    def on_outcome(self, outcome: Outcome) -> None:
        """Called for every message as it is validated (counters)."""

    async def prepare(self, conn: Conn) -> None:
        """Called once on entry, after the registry is loaded (restore state …)."""

    async def use_registry(self, registry: Registry) -> None:
        """Adopt a (new) registry snapshot."""
        self.validator.use(registry)

    def jobs(self) -> list[Job]:
        """The service's own periodic jobs (beyond heartbeat and registry refresh)."""
        return []

    async def quarantine_poison(self, outcome: Outcome, exc: Exception) -> None:
        """Quarantine a message :meth:`handle` raises on by itself (then it is acknowledged).

        Raises:
            StorageError: when the quarantine row cannot be written now (retried).
        """
        reason: RejectReason = (
            "storage_refused" if isinstance(exc, RefusedError) else "internal_error"
        )
        detail = storable(f"{self.service}: {type(exc).__name__}: {exc}"[:_POISON_DETAIL]) or ""
        station = publisher_of(outcome.message.topic)
        refused = msgspec.structs.replace(
            outcome,
            rows=(),
            readings=(),
            stations=(),
            status=None,
            quarantined=(Quarantined(reason, detail, station, None, max(1, outcome.records)),),
            sampled=True,
        )
        records, counts = quarantine_records([refused], self.quarantine_policy, self.service)
        try:
            async with asyncio.timeout(self.settings.write_timeout_s):
                async with self.pool.connection() as conn, conn.transaction():
                    await add_quarantine(conn, records, counts)
        except TimeoutError as exc2:
            msg = f"quarantine row not written within {self.settings.write_timeout_s:g} s"
            raise StorageError(msg) from exc2
        except psycopg.Error as exc2:  # an outage is retried; refused content is given up
            raise translate(exc2, f"quarantine row not written: {exc2}") from exc2
        self.counts[f"poison_{reason}"] += 1

    def stats(self) -> Stats:
        """A snapshot of every counter (reported through /health and /metrics)."""
        out: Stats = dict(self.counts)
        out.update(self.pipeline.counts)
        out["buffered_messages"] = self.consumer.buffered
        out["strategy"] = self.strategy or "unknown"
        return out

    # -- the shell ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        name, applied = await when_reachable("database", self._migrate)
        self.strategy = name
        logger.info("storage strategy: %s (migrations applied now: %s)", name, applied or "none")
        await when_reachable("database", self._open_pool)
        await self.consumer.__aenter__()  # connects in the background, retrying with backoff
        return self

    async def _migrate(self) -> tuple[StrategyName, list[int]]:
        return await upgrade(self.settings.database_url, self.settings.forced_storage)

    async def _open_pool(self) -> None:
        await self.pool.open(wait=True, timeout=30)
        async with self.pool.connection() as conn:
            await self.use_registry(await self._registry_reader.read(conn))
            await self.prepare(conn)

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.consumer.__aexit__(et, ev, tb)
        await self.pool.close()

    def stop(self) -> None:
        """Finish the pending batch, commit, acknowledge and return from :meth:`run`."""
        self.pipeline.stop()

    async def run(self) -> None:
        """Run until :meth:`stop` (or until the task is cancelled)."""
        s = self.settings
        jobs = [
            Job("heartbeat", s.heartbeat_interval_s, self.heartbeat, at_stop=True),
            Job("registry", s.registry_refresh_s, self.refresh),
            *self.jobs(),
        ]
        async with asyncio.TaskGroup() as tg:
            background = [tg.create_task(run_every(j.interval_s, j.run), name=j.name) for j in jobs]
            await self.pipeline.run()
            for task in background:
                task.cancel()
            await final_writes(jobs)
        logger.info("%s %s stopped: %s", self.service, s.instance, self.stats())

    async def refresh(self) -> None:
        """Reload the registry (periodically: stations are added while we run)."""
        async with self.pool.connection() as conn:
            registry = await self._registry_reader.changed(conn)
        if registry is not None:
            await self.use_registry(registry)

    async def heartbeat(self) -> None:
        """Record that this instance is alive, with its counters."""
        await heartbeat(self.pool, self.service, self.settings.instance, self.started_at,
                        self.stats())  # fmt: skip


async def when_reachable(what: str, attempt: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``attempt`` until the server it needs answers, waiting with backoff and saying so.

    Raises:
        StorageError: for a database that answers but refuses (a failed migration, a
            strategy that does not match the database): waiting would not help.
    """
    backoff = Backoff(initial_s=0.5, max_s=_STARTUP_BACKOFF_MAX_S)
    while True:
        try:
            result = await attempt()
        except (psycopg.OperationalError, PoolTimeout, OSError) as exc:
            cause = exc
        except StorageError as exc:
            if not isinstance(exc.__cause__, psycopg.OperationalError):
                raise
            cause = exc.__cause__
        else:
            if backoff.attempts:
                logger.info("the %s is reachable now", what)
            return result
        delay = backoff.next_delay(time.monotonic())
        lines = str(cause).strip().splitlines() or [type(cause).__name__]
        logger.warning(
            "waiting for the %s (attempt %d, next in %.1f s): %s",
            what, backoff.attempts, delay, lines[0][:300],
        )  # fmt: skip
        await asyncio.sleep(delay)


async def run_service(service: Service) -> None:
    """Run one service until SIGINT/SIGTERM, then shut down cleanly."""
    async with service:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, service.stop)
        await service.run()


def main(build: Callable[[], Service]) -> int:
    """``python -m <service>``: build the service from the environment and run it.

    A configuration error is one readable message and exit status 2, not a traceback.
    """
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def run() -> None:
        await run_service(build())  # built inside the loop its pool and client belong to

    try:
        asyncio.run(run())
    except ValidationError as exc:
        sys.stderr.write(f"configuration error / lỗi cấu hình: {describe_invalid(exc)}\n")
        return 2
    except DatabaseError as exc:
        sys.stderr.write(f"database error / lỗi cơ sở dữ liệu: {exc}\n")
        return 1
    return 0


def describe_invalid(exc: ValidationError) -> str:
    """A settings validation error on one line (``field: problem; …``)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
