"""The at-least-once service shell that ingest and processing both run on.

A :class:`StreamService` owns a connection pool and an MQTT :class:`~stream.consumer.Consumer`
and runs a :class:`~stream.pipeline.Pipeline` — decode and validate each message once, batch
by size or age, hand each batch to :meth:`StreamService.handle`, acknowledge after it
commits — plus its periodic jobs (heartbeat, registry refresh, and the service's own), all in
one ``TaskGroup``. A subclass says what a batch means (ingest: write it; processing: decide
on it) and which jobs it adds; the shell does the rest the same way for both:

- entering it migrates the database (the strategy it was built with wins), opens the pool,
  loads the registry and connects to the broker;
- :meth:`~StreamService.stop` finishes the pending batch, commits, acknowledges and returns
  from :meth:`~StreamService.run`, whose last act is a bounded final heartbeat;
- :func:`run_service` runs one until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Protocol, Self

import psycopg
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from contract import Registry
from db import Conn, Pool, Stats, StrategyName, heartbeat, load_registry, upgrade
from stream.batcher import Batch, Batcher
from stream.consumer import Consumer
from stream.pipeline import Pipeline, run_every
from stream.settings import StreamSettings
from stream.validate import Outcome, Validator

__all__ = ["Job", "Service", "StreamService", "main", "run_service"]

logger = logging.getLogger(__name__)

_FINAL_WRITE_S: Final = 5.0
"""How long a stop waits for each final write (the last heartbeat, a last snapshot)."""


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


class StreamService:
    """One instance of an at-least-once service (subclass it; see the module docstring).

    Args:
        settings: the instance's settings.
        subscriptions: MQTT topic filters (without the share prefix: added when the settings
            name a share group and the protocol is MQTT 5).
        shared: which of ``subscriptions`` go through the share group.
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
        subscriptions: Sequence[str],
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
        self.pool: Pool = AsyncConnectionPool(
            settings.database_url, min_size=1, max_size=pool_max, open=False,
            configure=configure, name=f"{settings.service}-{settings.instance}",
        )  # fmt: skip
        share = ""
        if settings.share_group and settings.mqtt_protocol == "5":
            share = f"$share/{settings.share_group}/"
        through_share = set(subscriptions if shared is None else shared)
        self.consumer = Consumer(
            settings.mqtt_url,
            client_id=settings.client_id,
            subscriptions=[(share if s in through_share else "") + s for s in subscriptions],
            protocol=settings.mqtt_protocol,
            session_expiry_s=settings.session_expiry_s,
            receive_maximum=settings.receive_maximum,
            buffer_max_bytes=int(settings.buffer_max_mb * 1024 * 1024),
        )
        self.validator = Validator(
            Registry({}),  # replaced by the database's on entry
            root=settings.topic_root,
            max_future_s=settings.max_future_s,
            max_age_s=settings.max_age_days * 86400.0,
            keep_readings=keep_readings,
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

    def stats(self) -> Stats:
        """A snapshot of every counter (reported through /health and /metrics)."""
        out: Stats = dict(self.counts)
        out.update(self.pipeline.counts)
        out["buffered_messages"] = self.consumer.buffered
        out["strategy"] = self.strategy or "unknown"
        return out

    # -- the shell ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        name, applied = await upgrade(self.settings.database_url, self.settings.forced_storage)
        self.strategy = name
        logger.info("storage strategy: %s (migrations applied now: %s)", name, applied or "none")
        await self.pool.open(wait=True, timeout=30)
        async with self.pool.connection() as conn:
            await self.use_registry(await load_registry(conn))
            await self.prepare(conn)
        await self.consumer.__aenter__()
        return self

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
            # The last snapshot and counters, if the database is there to take them: a stop
            # must end even when it is not.
            for job in sorted((j for j in jobs if j.at_stop), key=lambda j: j.name == "heartbeat"):
                try:
                    async with asyncio.timeout(_FINAL_WRITE_S):
                        await job.run()
                except (TimeoutError, psycopg.Error) as exc:
                    logger.warning("%s at stop not recorded: %s", job.name, exc)
        logger.info("%s %s stopped: %s", self.service, s.instance, self.stats())

    async def refresh(self) -> None:
        """Reload the registry (periodically: stations are added while we run)."""
        async with self.pool.connection() as conn:
            registry = await load_registry(conn)
        await self.use_registry(registry)

    async def heartbeat(self) -> None:
        """Record that this instance is alive, with its counters."""
        await heartbeat(self.pool, self.service, self.settings.instance, self.started_at,
                        self.stats())  # fmt: skip


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
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        sys.stderr.write(f"configuration error / lỗi cấu hình: {problems}\n")
        return 2
    return 0
