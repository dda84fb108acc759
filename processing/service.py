"""The processing service: the reading feed -> engine -> alert transitions and index rows.

Processing decides on what ingest *stored*, read from the reading feed (:mod:`db.feed`) in
commit order from a durable position, not on a broker subscription of its own: a broker
queue overflow, a restart under load or a long outage can delay a decision but never lose
one, and no reading is decided twice. For each step it reads feed batches after its
position, decides on them in a worker thread (the engine is pure: :mod:`processing.engine`)
and commits the alert transitions, the index rows and the new position in one transaction.

After a restart the detector snapshot (taken between steps, with the position it was taken
at) is restored and the feed replayed from there; steps up to the committed position only
rebuild the engine's state — their transitions are already committed — so the engine
resumes exactly where it stopped.

The lag — readings stored and not yet decided, and the age of the oldest of them — is in
the heartbeat (``/health``, ``/metrics``) and raises an operations alert past
``PROC_LAG_ALERT_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, NamedTuple, Self

import msgspec
import numpy as np
import psycopg
from psycopg_pool import AsyncConnectionPool

from contract import Quantity, Reading, Registry, StationId, sensor_id, utc_iso
from db import (
    Conn,
    Pool,
    QuarantineRecord,
    RegistryReader,
    Stats,
    StorageError,
    StrategyName,
    add_quarantine,
    feed,
    heartbeat,
)
from db import upgrade as migrate
from db.timescale import job_health
from processing.alerts.lifecycle import Command, Lifecycle
from processing.alerts.sink import (
    apply_commands,
    decided_alerts,
    escalate_unacknowledged,
    open_alert_rows,
    open_alerts,
)
from processing.bank import BANK_VERSION, DetectorBank
from processing.columns import QUANTITY_CODE, Columns
from processing.conditions.operations import OperationsWatch
from processing.conditions.thresholds import DEFAULT_RULES, ThresholdRule
from processing.derived import IndexRow
from processing.engine import Engine, EngineResult
from processing.errors import ProcessingError
from processing.settings import ProcessingSettings
from processing.store import load_snapshot, save_snapshot, store_indices
from stream.backoff import Backoff
from stream.pipeline import run_every
from stream.service import Job, final_writes, when_reachable
from stream.validate import storable

__all__ = ["ProcessingService"]

logger = logging.getLogger(__name__)

_FEED_ROWS: Final = 256
"""Feed batches read per query at most (each is one ingest batch)."""
_CHANNEL: Final = "reading_feed"


class _Sensor(NamedTuple):
    """What a storage key stands for, as the engine's columns need it."""

    station: StationId
    quantity: Quantity
    sensor_id: str
    code: int


class ProcessingService:
    """One processing instance.

    Args:
        settings: the instance's settings.
        rules: threshold rules to apply (defaults:
            :data:`processing.conditions.thresholds.DEFAULT_RULES`).
    """

    def __init__(
        self, settings: ProcessingSettings, rules: tuple[ThresholdRule, ...] = DEFAULT_RULES
    ) -> None:
        self.settings = settings
        self.pool: Pool = AsyncConnectionPool(
            settings.database_url, min_size=1, max_size=4, open=False,
            name=f"processing-{settings.instance}", timeout=settings.pool_timeout_s,
            reconnect_timeout=settings.reconnect_timeout_s,
        )  # fmt: skip
        self.lifecycle = Lifecycle(
            clear_after=settings.clear_after_samples, cooldown_s=settings.cooldown_s
        )
        self.engine = Engine(
            self.lifecycle, rules=rules, lead_time_s=settings.forecast_lead_time_s,
            slice_s=settings.slice_s, min_silence_s=settings.min_silence_s,
        )  # fmt: skip
        self.operations = OperationsWatch()
        self.strategy: StrategyName | None = None
        self.counts: Counter[str] = Counter()
        self.started_at = datetime.now(UTC)
        # The engine runs in a worker thread; registry swaps and snapshots wait for it.
        self._engine_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._sensors: dict[int, _Sensor] = {}
        self._registry_reader = RegistryReader()
        self._position = 0
        """The last feed number whose decisions are committed."""
        self._decided_through = 0
        """The last feed number the engine has seen (ahead of :attr:`_position` on replay)."""
        self._pending: list[Command] = []
        self._pending_rows: list[IndexRow] = []
        self._pending_seq = 0
        """A step decided and not yet committed (retried until it is)."""
        self._operations: list[Command] = []
        self._retry = Backoff(0.2, settings.retry_max_s)
        self._lag = feed.FeedLag(0, 0, 0, 0.0, 0)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        s = self.settings
        # started while the database is down: wait with backoff, and say so
        name, applied = await when_reachable(
            "database", lambda: migrate(s.database_url, s.forced_storage)
        )
        self.strategy = name
        logger.info("storage strategy: %s (migrations applied now: %s)", name, applied or "none")
        await when_reachable("database", lambda: self.pool.open(wait=True, timeout=30))
        async with self.pool.connection() as conn:
            await self.use_registry(await self._registry_reader.read(conn))
            await self._resume(conn)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.pool.close()

    def stop(self) -> None:
        """Finish the step in hand, commit it, and return from :meth:`run`."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Run until :meth:`stop`."""
        s = self.settings
        jobs = [
            Job("heartbeat", s.heartbeat_interval_s, self.heartbeat, at_stop=True),
            Job("registry", s.registry_refresh_s, self.refresh),
            Job("escalation", s.escalation_check_s, self._escalate),
            Job("snapshot", s.snapshot_interval_s, self.save_state, at_stop=True),
            Job("operations", s.operations_check_s, self.check_operations),
        ]
        async with asyncio.TaskGroup() as tg:
            background = [tg.create_task(run_every(j.interval_s, j.run), name=j.name) for j in jobs]
            background.append(tg.create_task(self._listen(), name="feed-listener"))
            await self._consume()
            for task in background:
                task.cancel()
            await final_writes(jobs)
        logger.info("processing %s stopped: %s", s.instance, self.stats())

    # -- the feed ----------------------------------------------------------------------------

    async def _resume(self, conn: Conn) -> None:
        """Restore the snapshot and the committed position; open alerts from the database."""
        committed = await feed.position(conn, self.settings.instance)
        snapshot = await self._restore_snapshot(conn)
        if committed is None:
            # A new instance starts with everything still in the feed: nothing stored is
            # left undecided because processing was not running yet.
            oldest = await feed.oldest(conn)
            committed = 0 if oldest is None else oldest - 1
        self._position = committed
        self._decided_through = committed if snapshot is None else min(snapshot, committed)
        decided = await decided_alerts(conn)
        self.lifecycle.restore(await open_alerts(conn), decided)
        self.lifecycle.resume_following(await open_alert_rows(conn))
        logger.info(
            "processing resumes at feed position %d (replaying from %d) with %d open alert(s) "
            "and %d decided one(s)", self._position, self._decided_through,
            len(self.lifecycle.open_keys), len(decided),
        )  # fmt: skip

    async def _listen(self) -> None:
        """Wake the consumer when ingest commits a batch (a poll covers lost notifications)."""
        backoff = Backoff(0.2, 10.0)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.settings.database_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {_CHANNEL}")
                    backoff.reset()
                    async for _ in conn.notifies():
                        self._wake.set()
            except psycopg.Error as exc:
                delay = backoff.next_delay(time.monotonic())
                logger.warning("feed listener lost (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def _consume(self) -> None:
        while not self._stopping.is_set():
            try:
                progressed = await self._step()
            except StorageError as exc:  # the database is away: wait and try again
                delay = self._retry.next_delay(time.monotonic())
                logger.warning("processing step not committed, retrying in %.1f s: %s", delay,
                               exc)  # fmt: skip
                self.counts["commit_retries"] += 1
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
                continue
            self._retry.reset()
            if not progressed:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.feed_poll_s):
                        await self._wake.wait()

    async def _step(self) -> bool:
        """Decide on (and commit) the next feed batches; False when there were none."""
        if self._pending or self._pending_seq > self._position:  # decided, not committed
            await self._commit_pending()
            return True
        try:
            async with self.pool.connection() as conn:
                batches = await feed.read_after(conn, self._decided_through, _FEED_ROWS)
        except psycopg.Error as exc:
            msg = f"feed not read: {exc}"
            raise StorageError(msg) from exc
        if not batches:
            return False
        # replayed batches (committed before a restart) never share a step with new ones
        replayed = [b for b in batches if b.seq <= self._position]
        new = [b for b in batches if b.seq > self._position]
        for part in (replayed, new):
            for chunk in _chunks(part, self.settings.batch_max_readings):
                await self._decide(chunk)
                if self._stopping.is_set():
                    return True
        return True

    async def _decide(self, batches: Sequence[feed.FeedBatch]) -> None:
        first, last = batches[0].seq, batches[-1].seq
        if first != self._decided_through + 1:
            self.counts["feed_batches_missed"] += first - self._decided_through - 1
            logger.error("feed batches %d..%d were pruned before processing read them",
                         self._decided_through + 1, first - 1)  # fmt: skip
        readings = self._columns(batches)
        replay = last <= self._position  # committed before a restart: rebuild state only
        async with self._engine_lock:
            result = await self._engine_step(readings, batches[0])
            self._decided_through = last
            if replay:
                self.counts["replayed_readings"] += len(readings)
                return
            self.counts["readings"] += len(readings)
            self.counts["detections"] += result.detections
            await self._commit(result, last)

    async def _engine_step(self, readings: Columns, batch: feed.FeedBatch) -> EngineResult:
        """The engine's decision on ``readings``; a reading it raises on is isolated.

        Whatever the engine raises (a bug some input triggers), processing goes on: the
        readings are decided in halves until the one that raises stands alone; it is
        quarantined (``internal_error`` with the exception's class, service ``processing``)
        and left undecided, and the lifecycle goes on from the alerts open in the database
        (transitions made before the error were never committed).
        """
        try:
            return await asyncio.to_thread(self.engine.process, readings.readings, readings)
        except Exception as exc:
            async with self.pool.connection() as conn:
                self.lifecycle.reset(await open_alerts(conn), await decided_alerts(conn))
                self.lifecycle.resume_following(await open_alert_rows(conn))
            if len(readings) <= 1:
                await self._quarantine(list(readings.readings), batch, exc)
                return EngineResult()
        middle = len(readings) // 2
        first = await self._engine_step(readings.take(np.arange(middle)), batch)
        second = await self._engine_step(readings.take(np.arange(middle, len(readings))), batch)
        return EngineResult(
            first.commands + second.commands, first.index_rows + second.index_rows,
            first.detections + second.detections,
        )  # fmt: skip

    async def _quarantine(
        self, readings: list[Reading], batch: feed.FeedBatch, exc: Exception
    ) -> None:
        self.counts["quarantined_internal_error"] += len(readings)
        detail = f"{type(exc).__name__}: {exc}"[:500]
        logger.error("processing could not decide %s: %s", readings, detail)
        for r in readings:
            payload = msgspec.json.encode(
                {"station": r.station_id, "quantity": r.quantity, "value": r.value,
                 "time": utc_iso(r.measured_at), "feed_seq": batch.seq}
            )  # fmt: skip
            record = QuarantineRecord(
                batch.received_at, f"feed/{batch.seq}", len(f"feed/{batch.seq}"), None,
                payload, len(payload), hashlib.sha256(payload).digest(), "internal_error",
                storable(detail) or "", r.station_id, r.quantity.value, 1, "processing",
            )  # fmt: skip
            async with self.pool.connection() as conn, conn.transaction():
                await add_quarantine(conn, [record], [])

    async def _commit(self, result: EngineResult, seq: int) -> None:
        """Transitions, index rows and the new position in one transaction (bounded wait)."""
        self._pending = list(result.commands)
        self._pending_rows = list(result.index_rows)
        self._pending_seq = seq
        await self._commit_pending()

    async def _commit_pending(self) -> None:
        commands, rows, seq = self._pending, self._pending_rows, self._pending_seq
        limit = self.settings.write_timeout_s
        try:
            async with asyncio.timeout(limit):
                async with self.pool.connection() as conn, conn.transaction():
                    stale = await apply_commands(conn, commands)
                    await store_indices(conn, rows)
                    await feed.advance(conn, self.settings.instance, seq)
        except TimeoutError:
            msg = f"{len(commands)} alert transition(s) not committed within {limit:g} s"
            raise StorageError(msg) from None
        except psycopg.Error as exc:
            msg = f"{len(commands)} alert transition(s) not committed: {exc}"
            raise StorageError(msg) from exc
        for key in stale:
            self.lifecycle.forget(key)
        for command in commands:
            self.counts[f"alerts_{type(command).__name__.lower()}"] += 1
        self.counts["index_rows"] += len(rows)
        self._position = seq
        self._pending = []

    def _columns(self, batches: Sequence[feed.FeedBatch]) -> Columns:
        """The feed's columns as the engine's, with a reading object per reading.

        One datetime per distinct time (stations share them); readings of sensors the
        registry does not know are counted and left out.
        """
        sensors = self._sensors
        readings: list[Reading] = []
        ids: list[str] = []
        codes: list[int] = []
        known: list[bool] = []
        moments: dict[float, datetime] = {}
        for batch in batches:
            received = batch.received_at
            for t, key, value in zip(batch.times_s.tolist(), batch.sensor_keys.tolist(),
                                     batch.values.tolist(), strict=True):  # fmt: skip
                sensor = sensors.get(key)
                known.append(sensor is not None)
                if sensor is None:
                    self.counts["unknown_sensor_readings"] += 1
                    continue
                moment = moments.get(t)
                if moment is None:
                    moment = moments[t] = datetime.fromtimestamp(t, UTC)
                readings.append(Reading(sensor.station, sensor.quantity, value, moment, received))
                ids.append(sensor.sensor_id)
                codes.append(sensor.code)
        mask = np.array(known, dtype=bool)
        times = np.concatenate([b.times_s for b in batches]) if batches else np.empty(0)
        values = np.concatenate([b.values for b in batches]) if batches else np.empty(0)
        return Columns(readings, times[mask].astype(np.float64), values[mask].astype(np.float64),
                       ids, np.array(codes, dtype=np.intp))  # fmt: skip

    # -- registry, snapshots, operations -----------------------------------------------------

    async def use_registry(self, registry: Registry) -> None:
        """The engine adopts the registry (sensors get detector slots); keys are mapped."""
        async with self._engine_lock:
            self.engine.use(registry)
            self._sensors = {key: _Sensor(StationId(s), q, sensor_id(s, q), QUANTITY_CODE[q])
                             for (s, q), key in registry.keys.items()}  # fmt: skip

    async def refresh(self) -> None:
        """Reload the registry (stations are added while we run)."""
        async with self.pool.connection() as conn:
            registry = await self._registry_reader.changed(conn)
        if registry is not None:
            await self.use_registry(registry)

    async def _restore_snapshot(self, conn: Conn) -> int | None:
        """The detector bank of the last snapshot; returns its feed position."""
        saved = await load_snapshot(conn, self.settings.instance)
        if saved is None:
            return None
        state, saved_at, position = saved
        try:
            bank = DetectorBank.from_bytes(state, self.engine.lanes)
        except ProcessingError as exc:
            logger.warning("detector snapshot not restored (%s); starting cold", exc)
            return None
        if position is None:
            logger.info("detector snapshot of %s has no feed position; starting cold", saved_at)
            return None
        self.engine.restore(bank)
        logger.info("detector state restored from the snapshot of %s (feed position %d)",
                    saved_at, position)  # fmt: skip
        return position

    async def save_state(self) -> None:
        """Store the detector bank's snapshot with the feed position it belongs to.

        Taken between steps under the engine lock, and only when everything the engine has
        seen is committed, so the snapshot and the position agree exactly.
        """
        async with self._engine_lock:
            if self._pending or self._decided_through != self._position:
                self.counts["snapshots_deferred"] += 1
                return
            data = await asyncio.to_thread(self.engine.bank.to_bytes)
            position = self._position
        async with self.pool.connection() as conn:
            await save_snapshot(conn, self.settings.instance, BANK_VERSION, data, position)

    async def check_operations(self) -> None:
        """Judge the system's own health (feed lag, storage jobs) and commit its alerts.

        Transitions not committed (the database away) are kept and committed first next
        time, so none is lost.
        """
        await self.lag()
        async with self.pool.connection() as conn:
            jobs = await job_health(conn) if self.strategy == "timescale" else []
        now = datetime.now(UTC)
        async with self._engine_lock:
            watched = self.lifecycle.watched_keys
            found = self.operations.processing_lag(
                self._lag, self.settings.lag_alert_s, now, watched
            )
            if self.strategy == "timescale":
                found += self.operations.storage_jobs(jobs, now, watched)
            for condition in found:
                command = self.lifecycle.step(condition, None)
                if command is not None:
                    self._operations.append(command)
        if self._operations:
            async with self.pool.connection() as conn, conn.transaction():
                await apply_commands(conn, self._operations)
            self.counts["operations_alert_transitions"] += len(self._operations)
            self._operations = []

    async def _escalate(self) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            n = await escalate_unacknowledged(conn, self.settings.escalation_after_s)
        self.counts["alerts_escalated"] += n

    async def heartbeat(self) -> None:
        """Record that this instance is alive, with its counters."""
        await heartbeat(self.pool, "processing", self.settings.instance, self.started_at,
                        self.stats())  # fmt: skip

    async def lag(self) -> feed.FeedLag:
        """How far behind the feed this instance is now (also kept for the heartbeat)."""
        async with self.pool.connection() as conn:
            self._lag = await feed.lag(conn, self._position)
        return self._lag

    @property
    def position(self) -> int:
        """The last feed number whose decisions are committed."""
        return self._position

    def stats(self) -> Stats:
        """A snapshot of every counter."""
        out: Stats = {"readings": 0, "open_alerts": len(self.lifecycle.open_keys)}
        out.update(self.counts)
        out["feed_position"] = self._position
        out["feed_head"] = self._lag.head
        out["lag_readings"] = self._lag.readings
        out["lag_s"] = round(self._lag.seconds, 3)
        out["alerts_suppressed_cooldown"] = self.lifecycle.suppressed
        out["held_glitches"] = self.lifecycle.held_glitches
        out["strategy"] = self.strategy or "unknown"
        watermark = self.engine.silence.watermark_s
        out["event_time_watermark_s"] = watermark if math.isfinite(watermark) else 0.0
        out.update({f"bank_{k}": v for k, v in self.engine.bank.stats().items()})
        return out


def _chunks(batches: Sequence[feed.FeedBatch], max_readings: int) -> list[list[feed.FeedBatch]]:
    """Consecutive feed batches grouped up to ``max_readings`` (a big batch stays whole)."""
    out: list[list[feed.FeedBatch]] = []
    size = 0
    for batch in batches:
        if out and size + len(batch) <= max_readings:
            out[-1].append(batch)
            size += len(batch)
        else:
            out.append([batch])
            size = len(batch)
    return out
