"""The ingest service: consumer -> validation -> batches -> writer -> acks.

One :class:`IngestService` owns the MQTT consumer and the connection pool, and runs its
loops in one ``TaskGroup``: consuming (decode and validate each message once, batch by size
or age), writing (one transaction per batch, retried with jittered backoff until it
commits, then acks in arrival order), maintenance (partitions, rollups, retention, stale
stations), registry refresh and heartbeats.

Accounting identity, true at every instant::

    received_records = stored + duplicates + quarantined + pending_records
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
from collections import Counter, deque
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Self

import psycopg
from psycopg_pool import AsyncConnectionPool

from contract import Registry, Topic
from db import Conn, StorageError, Strategy, heartbeat, load_registry, strategy_for, upgrade
from ingest.settings import IngestSettings
from ingest.writer import Writer, configure_connection, stale_stations
from stream.batcher import Batch, Batcher
from stream.consumer import Consumer
from stream.pipeline import Pipeline, run_every
from stream.validate import Outcome, Validator

__all__ = ["IngestService"]

logger = logging.getLogger(__name__)

_STALE: Final = """
INSERT INTO sensor_status (station_id, at, state, reason)
SELECT s.station_id, now(), 'stale',
       format('no data for %%s s / không có dữ liệu', round(extract(epoch FROM now() - s.last)))
FROM (SELECT station_id, max(l.received_at) AS last, min(interval_s) AS interval_s
      FROM sensors JOIN latest l USING (sensor_id) GROUP BY station_id) s
LEFT JOIN station_state st USING (station_id)
WHERE s.last < now() - make_interval(secs => s.interval_s * %s)
  AND coalesce(st.state, 'online') = 'online'
ON CONFLICT DO NOTHING"""


def _batches_in_flight(settings: IngestSettings) -> int:
    """Batches holding unacknowledged messages at most: being written, queued, filling."""
    return settings.write_concurrency + settings.write_queue_batches + 1


class IngestService:
    """One ingestor instance.

    Args:
        settings: the instance's settings.
    """

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self._pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            settings.database_url,
            min_size=2,
            max_size=settings.write_concurrency + 2,  # writers + upkeep + heartbeat
            open=False,
            configure=configure_connection,
            name=f"ingest-{settings.instance}",
        )
        root = settings.topic_root
        shared = settings.share_group and settings.mqtt_protocol == "5"
        share = f"$share/{settings.share_group}/" if shared else ""
        self.consumer = Consumer(
            settings.mqtt_url,
            client_id=settings.client_id,
            subscriptions=[share + Topic.filter("telemetry", root), Topic.filter("status", root)],
            protocol=settings.mqtt_protocol,
            session_expiry_s=settings.session_expiry_s,
            receive_maximum=settings.receive_maximum,
            buffer_max_bytes=int(settings.buffer_max_mb * 1024 * 1024),
        )
        self._validator = Validator(
            Registry({}),  # replaced by the database's in __aenter__
            root=root,
            max_future_s=settings.max_future_s,
            max_age_s=settings.max_age_days * 86400,
            keep_readings=False,  # rows are all the writer needs
        )
        self.pipeline = Pipeline(
            self.consumer,
            self._validator,
            Batcher(
                max_readings=settings.batch_max_readings,
                # Unacked messages of the batch being written, the queued ones and the one
                # filling must fit the in-flight window, or the broker stops sending while the
                # database works: the pipeline would stall instead of overlapping.
                max_messages=max(1, settings.receive_maximum // _batches_in_flight(settings)),
                max_age_s=settings.batch_max_age_s,
            ),
            self._write,
            queue_batches=settings.write_queue_batches,
            on_outcome=self._count,
            shutdown_grace_s=settings.shutdown_grace_s,
            concurrency=settings.write_concurrency,
        )
        self._writer: Writer | None = None
        self._strategy: Strategy | None = None
        self._started_at = datetime.now(UTC)
        self.counts: Counter[str] = Counter()
        self.quarantine_reasons: Counter[str] = Counter()
        self._last: dict[str, float] = {}
        self._lags_ms: deque[float] = deque(maxlen=20000)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        forced = None if self.settings.storage == "auto" else self.settings.storage
        name, applied = await upgrade(self.settings.database_url, forced)
        self._strategy = strategy_for(name)
        logger.info("storage strategy: %s (migrations applied now: %s)", name, applied or "none")
        await self._pool.open(wait=True, timeout=30)
        async with self._pool.connection() as conn:
            self._validator.use(await load_registry(conn))
            await self._strategy.maintain(conn, self.settings.retention_days)
        self._writer = Writer(self._pool, self._strategy)
        async with self._pool.connection() as conn:
            self._writer.stale = await stale_stations(conn)
        await self.consumer.__aenter__()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.consumer.__aexit__(et, ev, tb)
        await self._pool.close()

    def stop(self) -> None:
        """Ask :meth:`run` to flush, commit, ack and return."""
        self.pipeline.stop()

    async def run(self) -> None:
        """Run until :meth:`stop` is called (or the task is cancelled)."""
        async with asyncio.TaskGroup() as tg:
            background = [
                tg.create_task(run_every(self.settings.maintenance_interval_s, self._maintain),
                               name="maintenance"),
                tg.create_task(run_every(self.settings.heartbeat_interval_s, self._heartbeat),
                               name="heartbeat"),
                tg.create_task(run_every(self.settings.registry_refresh_s, self._refresh),
                               name="registry"),
            ]  # fmt: skip
            await self.pipeline.run()
            for task in background:
                task.cancel()
            try:  # the last counters, if the database is there to take them
                async with asyncio.timeout(5):
                    await self._heartbeat()
            except (TimeoutError, psycopg.Error) as exc:
                logger.warning("last heartbeat not recorded: %s", exc)
        logger.info("ingest %s stopped: %s", self.settings.instance, self.stats())

    # -- loops -------------------------------------------------------------------------------

    def _count(self, outcome: Outcome) -> None:
        self.counts["received_messages"] += 1
        self.counts["received_records"] += outcome.records
        self.counts["pending_records"] += outcome.records
        if outcome.status is not None:
            self.counts["status_messages"] += 1
        for q in outcome.quarantined:
            self.quarantine_reasons[q.reason] += q.readings
        if outcome.rows:
            last = outcome.rows[-1]  # (time, sensor, value, quality, received_at)
            self._last["lag_s"] = (last[4] - last[0]).total_seconds()

    async def _write(self, batch: Batch) -> None:
        assert self._writer is not None  # noqa: S101 - set in __aenter__
        try:
            # A database that stops answering on an open connection would otherwise hold the
            # batch (and every ack behind it) until the kernel's TCP timeout.
            async with asyncio.timeout(self.settings.write_timeout_s):
                result = await self._writer.write(batch)
        except TimeoutError:
            msg = f"batch not committed within {self.settings.write_timeout_s:g} s"
            raise StorageError(msg) from None
        records = sum(o.records for o in batch.outcomes)
        self.counts["stored"] += result.stored
        self.counts["duplicates"] += result.duplicates
        self.counts["quarantined"] += result.quarantined
        self.counts["pending_records"] -= records
        self.counts["status_changes"] += result.status_changes
        self._last["batch_readings"] = batch.readings
        self._last["commit_ms"] = result.commit_s * 1000
        committed = datetime.now(UTC)
        if batch.outcomes:
            oldest = batch.outcomes[0].message.received_at
            self._last["receive_to_commit_ms"] = (committed - oldest).total_seconds() * 1000
        # Measurement-to-commit lag of each message's first reading: for live devices this is
        # the publish-to-commit latency operators care about (bounded reservoir).
        self._lags_ms.extend(
            (committed - o.rows[0][0]).total_seconds() * 1000 for o in batch.outcomes if o.rows
        )

    async def _maintain(self) -> None:
        assert self._strategy is not None  # noqa: S101
        async with self._pool.connection() as conn:
            summary = await self._strategy.maintain(conn, self.settings.retention_days)
            cur = await conn.execute(_STALE, (self.settings.stale_factor,))
            if cur.rowcount:
                logger.info("%d station(s) became stale", cur.rowcount)
            if self._writer is not None:  # (including those another instance marked)
                self._writer.stale = await stale_stations(conn)
        logger.debug("maintenance: %s", summary)

    async def _refresh(self) -> None:
        async with self._pool.connection() as conn:
            self._validator.use(await load_registry(conn))

    async def _heartbeat(self) -> None:
        await heartbeat(
            self._pool, "ingest", self.settings.instance, self._started_at, self.stats()
        )

    def stats(self) -> dict[str, float | int | str]:
        """A snapshot of every counter (reported through the ops API's /health and /metrics)."""
        c = self.consumer.stats
        out: dict[str, float | int | str] = {
            "received_messages": 0, "received_records": 0, "stored": 0, "duplicates": 0,
            "quarantined": 0, "pending_records": 0, "status_messages": 0, "status_changes": 0,
            "batches": 0, "acked_messages": 0, "handler_retries": 0,
        }  # fmt: skip
        out.update(self.counts)
        out.update(self.pipeline.counts)
        out.update({f"quarantined_{k}": v for k, v in self.quarantine_reasons.items()})
        out.update(self._last)
        if len(self._lags_ms) >= 2:
            p50, p99 = statistics.quantiles(self._lags_ms, n=100, method="inclusive")[49::49]
            out.update(commit_lag_p50_ms=round(p50, 1), commit_lag_p99_ms=round(p99, 1))
        out.update(
            mqtt_connects=c.connects, mqtt_connect_failures=c.connect_failures,
            mqtt_disconnects=c.disconnects, mqtt_received=c.received, mqtt_acked=c.acked,
            mqtt_acks_skipped_stale=c.acks_skipped_stale, mqtt_paused=c.paused,
            buffered_messages=self.consumer.buffered, write_queue=self.pipeline.queued_batches,
            pool_size=self._pool.get_stats().get("pool_size", 0),
            strategy=self._strategy.name if self._strategy else "unknown",
        )  # fmt: skip
        return out


async def run_service(settings: IngestSettings) -> None:
    """Run one ingestor until SIGINT/SIGTERM, then shut down cleanly."""
    import signal

    async with IngestService(settings) as service:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, service.stop)
        await service.run()
