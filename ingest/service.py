"""The ingest service: consumer -> validation -> batches -> writer -> acks.

:class:`IngestService` is the stream shell (:mod:`stream.service`) whose batches are
*written*: one transaction per batch, retried with jittered backoff until it commits, then
acknowledged in arrival order. Its own periodic job is the upkeep of :mod:`ingest.upkeep`
(partitions, rollups, retention, stale stations).

Accounting identity, true at every instant::

    received_records = stored + duplicates + quarantined + pending_records
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections import Counter, deque
from datetime import UTC, datetime

from contract import Topic
from db import Conn, RefusedError, Stats, StorageError, Strategy, strategy_for
from ingest.settings import IngestSettings
from ingest.upkeep import Upkeep
from ingest.writer import Writer, configure_connection
from stream.batcher import Batch
from stream.consumer import Subscription
from stream.service import Job, StreamService
from stream.validate import RECEIVED_AT, TIME, Outcome

__all__ = ["IngestService"]

logger = logging.getLogger(__name__)


def _batches_in_flight(settings: IngestSettings) -> int:
    """Batches holding unacknowledged messages at most: being written, queued, filling."""
    return settings.write_concurrency + settings.write_queue_batches + 1


class IngestService(StreamService):
    """One ingestor instance.

    Args:
        settings: the instance's settings.
    """

    def __init__(self, settings: IngestSettings) -> None:
        root = settings.topic_root
        telemetry = Topic.filter("telemetry", root)
        super().__init__(
            settings,
            # No retained telemetry, ever; the retained statuses only for a new session (a
            # first start learns every station's state, a reconnect does not hear it again).
            subscriptions=[
                Subscription(telemetry, retained="never"),
                Subscription(Topic.filter("status", root), retained="new"),
            ],
            shared=[telemetry],
            pool_max=settings.write_concurrency + 2,  # writers + upkeep + heartbeat
            keep_readings=False,  # rows are all the writer needs
            # Unacked messages of the batch being written, the queued ones and the one filling
            # must fit the in-flight window, or the broker stops sending while the database
            # works: the pipeline would stall instead of overlapping.
            max_messages=max(1, settings.receive_maximum // _batches_in_flight(settings)),
            queue_batches=settings.write_queue_batches,
            concurrency=settings.write_concurrency,
            configure=configure_connection,
        )
        self.settings: IngestSettings = settings
        self._writer: Writer | None = None
        self._upkeep: Upkeep | None = None
        self._storage: Strategy | None = None
        self.quarantine_reasons: Counter[str] = Counter()
        self._last: dict[str, float] = {}
        self._lags_ms: deque[float] = deque(maxlen=20000)

    async def prepare(self, conn: Conn) -> None:
        """Premake partitions and learn which stations are stale before the first batch."""
        assert self.strategy is not None  # noqa: S101 - set by the shell before prepare
        strategy: Strategy = strategy_for(self.strategy)
        self._storage = strategy
        self._writer = Writer(self.pool, strategy, self.quarantine_policy)
        self._upkeep = Upkeep(
            strategy, self.settings.retention_days, self.settings.stale_rule,
            self.settings.quarantine_retention_days,
            feed_retention_s=self.settings.feed_retention_h * 3600.0,
        )  # fmt: skip
        await self._upkeep.run(conn, self._writer)

    def jobs(self) -> list[Job]:
        """Upkeep: partitions ahead, rollups, retention, stale stations."""
        return [Job("maintenance", self.settings.maintenance_interval_s, self._maintain)]

    def on_outcome(self, outcome: Outcome) -> None:
        """Count each message as it is validated (pending until its batch commits)."""
        self.counts["received_messages"] += 1
        self.counts["received_records"] += outcome.records
        self.counts["pending_records"] += outcome.records
        if outcome.status is not None:
            self.counts["status_messages"] += 1
        for q in outcome.quarantined:
            self.quarantine_reasons[q.reason] += q.readings
        if outcome.rows:
            last = outcome.rows[-1]
            self._last["lag_s"] = (last[RECEIVED_AT] - last[TIME]).total_seconds()

    async def handle(self, batch: Batch) -> None:
        """Write one batch (a bounded wait: a silent database must not hold the acks)."""
        assert self._writer is not None  # noqa: S101 - set in prepare
        limit = self.settings.write_timeout_s
        try:
            async with asyncio.timeout(limit):
                result = await self._writer.write(batch)
        except TimeoutError:
            msg = f"batch not committed within {limit:g} s"
            raise StorageError(msg) from None
        self.counts["stored"] += result.stored
        self.counts["duplicates"] += result.duplicates
        self.counts["quarantined"] += result.quarantined
        self.counts["pending_records"] -= sum(o.records for o in batch.outcomes)
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
            (committed - o.rows[0][TIME]).total_seconds() * 1000 for o in batch.outcomes if o.rows
        )

    async def quarantine_poison(self, outcome: Outcome, exc: Exception) -> None:
        """Quarantine a message the writer cannot write even alone; it counts as quarantined.

        Raises:
            StorageError: when the quarantine row cannot be written now (retried).
        """
        await super().quarantine_poison(outcome, exc)
        # Its quarantine row counts at least one record (an accepted status counted none).
        refused = max(1, outcome.records)
        self.counts["received_records"] += refused - outcome.records
        self.counts["quarantined"] += refused
        self.counts["pending_records"] -= outcome.records
        self.quarantine_reasons[
            "storage_refused" if isinstance(exc, RefusedError) else "internal_error"
        ] += refused

    async def _maintain(self) -> None:
        assert self._upkeep is not None  # noqa: S101 - set in prepare
        assert self._writer is not None  # noqa: S101
        async with self.pool.connection() as conn:
            await self._upkeep.run(conn, self._writer)

    def stats(self) -> Stats:
        """Every counter (reported through the ops API's /health and /metrics)."""
        c = self.consumer.stats
        out: Stats = {
            "received_messages": 0, "received_records": 0, "stored": 0, "duplicates": 0,
            "quarantined": 0, "pending_records": 0, "status_messages": 0, "status_changes": 0,
            "batches": 0, "acked_messages": 0, "handler_retries": 0,
        }  # fmt: skip
        out.update(super().stats())
        out.update({f"quarantined_{k}": v for k, v in self.quarantine_reasons.items()})
        out.update(self._last)
        if self._storage is not None:
            out.update(self._storage.stats())
        if len(self._lags_ms) >= 2:
            p50, p99 = statistics.quantiles(self._lags_ms, n=100, method="inclusive")[49::49]
            out.update(commit_lag_p50_ms=round(p50, 1), commit_lag_p99_ms=round(p99, 1))
        out.update(
            mqtt_connects=c.connects, mqtt_connect_failures=c.connect_failures,
            mqtt_disconnects=c.disconnects, mqtt_received=c.received, mqtt_acked=c.acked,
            mqtt_acks_skipped_stale=c.acks_skipped_stale, mqtt_paused=c.paused,
            write_queue=self.pipeline.queued_batches,
            pool_size=self.pool.get_stats().get("pool_size", 0),
        )  # fmt: skip
        return out
