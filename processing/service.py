"""The processing service: readings -> engine -> alert transitions and index rows (+ NOTIFY).

:class:`ProcessingService` is the stream shell (:mod:`stream.service`) whose batches are
*decided*: it holds its own persistent subscription (``$share/<group>/…`` when a group is
set), so detector cost never slows database writes and either service can restart alone.
Messages are validated exactly as ingest validates them (same registry, same time window);
the engine (:mod:`processing.engine`, pure) decides on each batch in a worker thread, and
the batch's alert transitions and index rows are committed in one transaction before its
messages are acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Final

import psycopg

from contract import Registry, Topic
from db import Conn, RefusedError, Stats, StorageError, translate
from processing.alerts.lifecycle import Lifecycle
from processing.alerts.sink import apply_commands, escalate_unacknowledged, open_alerts
from processing.bank import BANK_VERSION, DetectorBank
from processing.conditions.thresholds import DEFAULT_RULES, ThresholdRule
from processing.engine import Engine, EngineResult
from processing.errors import ProcessingError
from processing.settings import ProcessingSettings
from processing.store import load_snapshot, save_snapshot, store_indices
from stream.batcher import Batch
from stream.consumer import Subscription
from stream.service import Job, StreamService

__all__ = ["ProcessingService"]

logger = logging.getLogger(__name__)

# A snapshot waits (in short steps) for the batch being committed to be acknowledged.
_SNAPSHOT_WAIT_S: Final = 2.0
_SNAPSHOT_STEP_S: Final = 0.02


class ProcessingService(StreamService):
    """One processing instance.

    Args:
        settings: the instance's settings.
        rules: threshold rules to apply (defaults:
            :data:`processing.conditions.thresholds.DEFAULT_RULES`).
    """

    def __init__(
        self, settings: ProcessingSettings, rules: tuple[ThresholdRule, ...] = DEFAULT_RULES
    ) -> None:
        telemetry = Subscription(Topic.filter("telemetry", settings.topic_root), retained="never")
        super().__init__(settings, subscriptions=[telemetry])
        self.settings: ProcessingSettings = settings
        self.lifecycle = Lifecycle(
            clear_after=settings.clear_after_samples, cooldown_s=settings.cooldown_s
        )
        self.engine = Engine(
            self.lifecycle, rules=rules, lead_time_s=settings.forecast_lead_time_s,
            slice_s=settings.slice_s, min_silence_s=settings.min_silence_s,
        )  # fmt: skip
        # The engine runs in a worker thread; registry swaps and snapshots wait for it.
        self._engine_lock = asyncio.Lock()
        self._open_alerts = 0
        self._decided: tuple[Batch, EngineResult] | None = None
        """The batch being committed and what the engine decided on it (for a retry)."""
        self._handed = 0
        """Messages of the batches given to the engine (acknowledged ones catch up with it)."""

    async def prepare(self, conn: Conn) -> None:
        """Restore the detector snapshot and the open alerts."""
        await self._restore_state(conn)
        self.lifecycle.restore(await open_alerts(conn))
        self._open_alerts = len(self.lifecycle.open_keys)
        logger.info("processing resumes with %d open alert(s)", self._open_alerts)

    async def use_registry(self, registry: Registry) -> None:
        """Validation and the engine (sensors get detector slots) adopt the registry."""
        await super().use_registry(registry)
        async with self._engine_lock:
            self.engine.use(registry)

    def jobs(self) -> list[Job]:
        """Escalation of unacknowledged alerts, and the detector snapshot."""
        s = self.settings
        return [
            Job("escalation", s.escalation_check_s, self._escalate),
            Job("snapshot", s.snapshot_interval_s, self.save_state, at_stop=True),
        ]

    async def handle(self, batch: Batch) -> None:
        """Decide on a batch (once) and commit what was decided."""
        decided = self._decided
        if decided is not None and decided[0] is batch:
            # A retry: the engine already decided this batch (its state moved on, its
            # lifecycle holds the transitions as made); only their commit failed, so the
            # same transitions are committed again rather than decided twice.
            result = decided[1]
        else:
            self._handed += len(batch)
            readings = [r for outcome in batch.outcomes for r in outcome.readings]
            if not readings:
                return
            async with self._engine_lock:
                # numpy work off the event loop; only this task touches the engine meanwhile
                try:
                    result = await asyncio.to_thread(self.engine.process, readings)
                except Exception:
                    # The shell splits the batch to find the message that makes the engine
                    # raise. Transitions the lifecycle made before it raised were never
                    # committed: the database's open alerts are the truth to go on from.
                    await self._resync_alerts()
                    raise
                self._open_alerts = len(self.lifecycle.open_keys)
            self.counts["readings"] += len(readings)
            self.counts["detections"] += result.detections
            self.counts["repeats"] += result.repeats
            self._decided = (batch, result)
        if result.commands or result.index_rows:
            try:
                stale = await self._commit(result)
            except RefusedError:
                # The database refuses what the engine made of this batch (a bug, not a
                # message): it cannot be committed as it is, and retrying would hold the
                # acknowledgements for ever. Go on from the database's open alerts.
                self._decided = None
                await self._resync_alerts()
                raise
            self.counts["index_rows"] += len(result.index_rows)
            for key in stale:
                self.lifecycle.forget(key)
            for command in result.commands:
                self.counts[f"alerts_{type(command).__name__.lower()}"] += 1
        self._decided = None

    async def _resync_alerts(self) -> None:
        """Align the lifecycle's open alerts with the database's (after an engine failure)."""
        try:
            async with asyncio.timeout(self.settings.write_timeout_s):
                async with self.pool.connection() as conn:
                    rows = await open_alerts(conn)
        except (TimeoutError, psycopg.Error) as exc:
            logger.warning("open alerts not re-read after an engine failure: %s", exc)
            return
        stored = {key for key, _, _ in rows}
        for key in self.lifecycle.open_keys - stored:
            self.lifecycle.forget(key)
        self.lifecycle.restore(rows)
        self.counts["engine_failures"] += 1

    async def _commit(self, result: EngineResult) -> list[str]:
        """Alert transitions and index rows in one transaction (a bounded wait)."""
        limit = self.settings.write_timeout_s
        try:
            # A database that stops answering on an open connection would otherwise hold
            # the batch, and every acknowledgement behind it, until the kernel gives up.
            async with asyncio.timeout(limit):
                async with self.pool.connection() as conn, conn.transaction():
                    stale = await apply_commands(conn, result.commands)
                    await store_indices(conn, result.index_rows)
        except TimeoutError:
            msg = f"{len(result.commands)} alert transition(s) not committed within {limit:g} s"
            raise StorageError(msg) from None
        except psycopg.Error as exc:
            msg = f"{len(result.commands)} alert transition(s) not committed: {exc}"
            raise translate(exc, msg) from exc
        return stale

    async def _restore_state(self, conn: Conn) -> None:
        saved = await load_snapshot(conn, self.settings.instance)
        if saved is None:
            return
        state, saved_at = saved
        try:
            bank = DetectorBank.from_bytes(state, self.engine.lanes)
        except ProcessingError as exc:
            logger.warning("detector snapshot not restored (%s); starting cold", exc)
            return
        self.engine.bank = bank
        logger.info("detector state restored from the snapshot of %s", saved_at)

    async def save_state(self) -> None:
        """Store the detector bank's snapshot (periodically and at shutdown).

        The snapshot is taken only when every batch the engine has seen is acknowledged:
        after a crash the broker redelivers exactly the batches the restored bank has not
        learnt from, so none is learnt twice. While a batch is between decision and
        acknowledgement (its commit takes milliseconds) the snapshot waits; if that lasts
        (the database is down, or a stop abandoned a batch), this round is skipped and the
        snapshot saved before stands.
        """
        data = None
        for _ in range(int(_SNAPSHOT_WAIT_S / _SNAPSHOT_STEP_S)):
            async with self._engine_lock:
                if self._handed == self.pipeline.counts["acked_messages"]:
                    data = await asyncio.to_thread(self.engine.bank.to_bytes)
                    break
            await asyncio.sleep(_SNAPSHOT_STEP_S)
        if data is None:
            self.counts["snapshots_deferred"] += 1
            logger.info("detector snapshot deferred: a batch is not acknowledged yet")
            return
        async with self.pool.connection() as conn:
            await save_snapshot(conn, self.settings.instance, BANK_VERSION, data)

    async def _escalate(self) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            n = await escalate_unacknowledged(conn, self.settings.escalation_after_s)
        self.counts["alerts_escalated"] += n

    def stats(self) -> Stats:
        """A snapshot of every counter."""
        out: Stats = {"readings": 0, "open_alerts": 0}
        out.update(super().stats())
        out["open_alerts"] = self._open_alerts
        out["alerts_suppressed_cooldown"] = self.lifecycle.suppressed
        out["held_glitches"] = self.lifecycle.held_glitches
        watermark = self.engine.silence.watermark_s
        out["event_time_watermark_s"] = watermark if math.isfinite(watermark) else 0.0
        out.update({f"bank_{k}": v for k, v in self.engine.bank.stats().items()})
        return out
