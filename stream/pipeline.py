"""The consume -> validate -> batch -> handle -> ack loop shared by ingest and processing.

A :class:`Pipeline` takes messages from a :class:`~stream.consumer.Consumer`, validates each
once, batches by size or age, and hands full batches over a bounded queue to a handler.
The handler is retried with jittered backoff until it succeeds (nothing is dropped); only
then are the batch's messages acknowledged, in arrival order. When the handler is stuck
(database down), the queue fills, the consumer's buffer fills, reading pauses, and the broker
holds the backlog.

No message can stop the loop or hold the acknowledgements for ever: a handler that raises
anything but :class:`~db.StorageError` (a database refusing the rows' content, a bug some
input triggers) has its batch split in halves, each handled on its own, until the messages
that make it raise stand alone; each of those is handed to ``on_poison`` (which quarantines
it) and acknowledged with the rest.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import psycopg

from db import DatabaseError, StorageError
from stream.backoff import backoff_delay
from stream.batcher import Batch, Batcher
from stream.consumer import Consumer
from stream.validate import Outcome, Validator

__all__ = ["Pipeline", "run_every"]

logger = logging.getLogger(__name__)

Handler = Callable[[Batch], Awaitable[None]]
PoisonHandler = Callable[[Outcome, Exception], Awaitable[None]]


class Pipeline:
    """Consume, validate, batch and handle messages, acking after the handler commits.

    Args:
        consumer: the MQTT consumer (entered by the caller).
        validator: turns raw messages into outcomes.
        batcher: the size/age policy.
        handler: writes a batch; raise :class:`~db.errors.StorageError` to retry it, anything
            else to have the batch split (see the module docstring).
        queue_batches: full batches waiting for the handler (bounded).
        on_outcome: called for every outcome as it is validated (for counters).
        shutdown_grace_s: after :meth:`stop`, how long a failing handler is still retried;
            past it the remaining batches are left unacknowledged (the broker redelivers
            them to the next run), so a shutdown with the database down ends.
        concurrency: batches handled at once (each on its own database connection, so the
            database can use more than one core). Acks still go out in arrival order: a
            batch is acknowledged only when it and every batch before it have committed.
            Keep 1 where the handler's effects must follow arrival order (processing).
        on_poison: records a message the handler raised on when handling it alone (raise
            :class:`~db.errors.StorageError` to have that retried). Without it, such a
            message is only logged and counted.
        retry_max_s: longest wait between two attempts of a failing batch (the first commit
            after the database comes back is at most this late).
    """

    def __init__(
        self,
        consumer: Consumer,
        validator: Validator,
        batcher: Batcher,
        handler: Handler,
        *,
        queue_batches: int = 2,
        on_outcome: Callable[[Outcome], None] | None = None,
        shutdown_grace_s: float = 30.0,
        concurrency: int = 1,
        on_poison: PoisonHandler | None = None,
        retry_max_s: float = 30.0,
    ) -> None:
        self.consumer = consumer
        self.validator = validator
        self._batcher = batcher
        self._handler = handler
        self._on_outcome = on_outcome
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue(queue_batches)
        self._stopping = asyncio.Event()
        self._grace_s = shutdown_grace_s
        self._stop_at: float | None = None
        self._attempts: set[asyncio.Timeout] = set()
        self._concurrency = max(1, concurrency)
        self._abandoning = False
        self._on_poison = on_poison
        self._retry_max_s = retry_max_s
        self.counts: Counter[str] = Counter()

    def stop(self) -> None:
        """Finish the pending batch, handle it, ack, and return from :meth:`run`."""
        if self._stop_at is None:
            self._stop_at = time.monotonic()
            deadline = asyncio.get_running_loop().time() + self._grace_s
            for attempt in self._attempts:  # writes in flight get the grace, no more
                attempt.reschedule(deadline)
        self._stopping.set()

    def _grace_left(self) -> float:
        """Seconds of retrying left (infinite until :meth:`stop`)."""
        if self._stop_at is None:
            return float("inf")
        return self._stop_at + self._grace_s - time.monotonic()

    @property
    def queued_batches(self) -> int:
        """Batches waiting for the handler."""
        return self._queue.qsize()

    async def run(self) -> None:
        """Run until :meth:`stop`; the handler drains what was queued before returning.

        (A handler's exception is not raised from here: see the module docstring.)
        """
        handling = asyncio.create_task(self._handle_loop(), name="pipeline-handler")
        consuming = asyncio.create_task(self._consume_loop(), name="pipeline-consumer")
        try:
            done, _ = await asyncio.wait({handling, consuming}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Our owner cancelled us: our tasks must not outlive us.
            for task in (consuming, handling):
                task.cancel()
            await asyncio.gather(consuming, handling, return_exceptions=True)
            raise
        if handling in done:  # it only ends early by failing: stop consuming, report it
            consuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consuming
            handling.result()
            return
        await self._queue.put(None)
        await handling
        consuming.result()

    async def _consume_loop(self) -> None:
        batcher, check, on_outcome = self._batcher, self.validator.check, self._on_outcome
        while not self._stopping.is_set():
            due = batcher.due_in(time.monotonic())
            try:
                async with asyncio.timeout(0.5 if due is None else min(due, 0.5)):
                    messages = await self.consumer.get_many(batcher.max_messages)
            except TimeoutError:
                if batcher.due_in(time.monotonic()) == 0.0:
                    await self._flush()
                continue
            now = time.monotonic()  # one clock reading per chunk: ages are coarse anyway
            for message in messages:
                outcome = check(message)
                if on_outcome is not None:
                    on_outcome(outcome)
                if batcher.add(outcome, now):
                    await self._flush()
            if batcher.due_in(time.monotonic()) == 0.0:
                await self._flush()
        await self._flush()

    async def _flush(self) -> None:
        if len(self._batcher):
            await self._queue.put(self._batcher.take())

    async def _handle_loop(self) -> None:
        inflight: collections.deque[tuple[Batch, asyncio.Task[bool]]] = collections.deque()
        getter: asyncio.Task[Batch | None] | None = None
        try:
            while True:
                if getter is None:
                    getter = asyncio.create_task(self._queue.get())
                # Wake for a new batch or for the oldest write finishing (which may release
                # acknowledgements of later batches that committed before it).
                head = {inflight[0][1]} if inflight else set()
                await asyncio.wait({getter, *head}, return_when=asyncio.FIRST_COMPLETED)
                self._settle(inflight)
                if not getter.done():
                    continue
                batch, getter = getter.result(), None
                if batch is None:
                    break
                while len(inflight) >= self._concurrency:
                    await asyncio.wait({inflight[0][1]})  # the oldest decides what may be acked
                    self._settle(inflight)
                if self._abandoning:
                    self._abandon(batch)
                    continue
                task = asyncio.create_task(self._handle_with_retry(batch), name="pipeline-write")
                inflight.append((batch, task))
            while inflight:
                await asyncio.wait({inflight[0][1]})
                self._settle(inflight)
        finally:  # a failing handler: the batches still being written must not outlive us
            pending: list[asyncio.Task[bool] | asyncio.Task[Batch | None]] = [
                task for _, task in inflight
            ]
            if getter is not None:
                pending.append(getter)
            for waiting in pending:
                waiting.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._abandoning:
            logger.error(
                "stopped with %d message(s) not committed: they stay unacknowledged and the "
                "broker redelivers them to the next run",
                self.counts["unacked_at_shutdown"],
            )

    def _settle(self, inflight: collections.deque[tuple[Batch, asyncio.Task[bool]]]) -> None:
        """Acknowledge the committed batches at the head of ``inflight``, in arrival order."""
        while inflight and inflight[0][1].done():
            batch, task = inflight.popleft()
            committed = task.result()
            if not committed or self._abandoning:
                # Shutting down and the handler still fails: nothing of this batch (or any
                # later one) is acknowledged, so the broker keeps them for the next run.
                self._abandon(batch)
                continue
            for outcome in batch.outcomes:  # arrival order, after the commit
                self.consumer.ack(outcome.message)
            self.counts["batches"] += 1
            self.counts["acked_messages"] += len(batch)

    def _abandon(self, batch: Batch) -> None:
        self._abandoning = True
        self.counts["unacked_at_shutdown"] += len(batch)

    async def _handle_with_retry(self, batch: Batch) -> bool:
        """Handle a batch, retrying; False when shutdown's grace ran out first."""
        try:
            return await self._retrying(lambda: self._handler(batch), "batch")
        except Exception as exc:  # its content broke the handler: isolate what did
            return await self._isolate(batch, exc)

    async def _isolate(self, batch: Batch, exc: Exception) -> bool:
        """Handle the halves of a batch the handler raised on; quarantine lone culprits."""
        if len(batch) <= 1:
            return all([await self._poison(o, exc) for o in batch.outcomes])
        self.counts["batch_splits"] += 1
        if self.counts["batch_splits"] == 1 or len(batch) >= self._batcher.max_messages:
            logger.warning(
                "a batch of %d messages made the handler raise %s: %s; handling its halves "
                "apart to find the messages that do",
                len(batch), type(exc).__name__, str(exc)[:300],
            )  # fmt: skip
        half = len(batch) // 2
        for part in (batch.outcomes[:half], batch.outcomes[half:]):
            sub = Batch(list(part), sum(len(o.rows) for o in part), batch.opened_at)
            if not await self._handle_with_retry(sub):
                return False
        return True

    async def _poison(self, outcome: Outcome, exc: Exception) -> bool:
        """Record a message the handler raises on by itself; then it may be acknowledged."""
        self.counts["poison_messages"] += 1
        topic = outcome.message.topic[:200]
        logger.error(
            "the message on %r makes the handler raise %s: %s; quarantined",
            topic, type(exc).__name__, str(exc)[:300],
        )  # fmt: skip
        if self._on_poison is None:
            return True
        record = self._on_poison
        try:
            return await self._retrying(lambda: record(outcome, exc), "poison message")
        except Exception:
            # Not even its quarantine row can be written: acknowledging it unrecorded is the
            # only way the stream goes on. Loud, and counted.
            self.counts["poison_unrecorded"] += 1
            logger.exception("the poison message on %r could not be quarantined", topic)
            return True

    async def _retrying(self, call: Callable[[], Awaitable[None]], what: str) -> bool:
        """Await ``call`` until it does not raise StorageError; False when grace runs out.

        Raises:
            Exception: anything ``call`` raises but StorageError (and our own timeout).
        """
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            deadline = asyncio.timeout(None)
            try:
                async with deadline:
                    if self._stop_at is not None:
                        deadline.reschedule(loop.time() + max(0.0, self._grace_left()))
                    self._attempts.add(deadline)
                    try:
                        await call()
                    finally:
                        self._attempts.discard(deadline)
                return True
            except (StorageError, TimeoutError) as exc:
                if isinstance(exc, TimeoutError) and deadline.expired():
                    logger.error("%s not committed within the shutdown grace", what)
                    return False
                attempt += 1
                self.counts["handler_retries"] += 1
                delay = backoff_delay(attempt, cap_s=self._retry_max_s)
                if self._grace_left() <= delay:
                    logger.error(
                        "%s not committed (attempt %d) at shutdown: %s", what, attempt, exc
                    )
                    return False
                log = logger.warning if attempt < 5 else logger.error
                log("%s not committed (attempt %d), retrying in %.1f s: %s", what, attempt, delay,
                    exc)  # fmt: skip
                if self._stop_at is None:  # a stop cuts the wait short (then: one more try)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._stopping.wait()
                else:
                    await asyncio.sleep(delay)


async def run_every(interval_s: float, job: Callable[[], Awaitable[object]]) -> None:
    """Run ``job`` every ``interval_s`` forever; a failure is logged and retried next round.

    Upkeep (maintenance, heartbeats, registry refresh) must never take the data path down.
    """
    name = getattr(job, "__name__", job)
    while True:
        await asyncio.sleep(interval_s)
        try:
            await job()
        except (psycopg.Error, DatabaseError, TimeoutError) as exc:
            # the database is away (its outage is reported by the data path): one line
            logger.warning("periodic job %s not done: %s", name, str(exc).strip()[:300])
        except Exception:
            logger.exception("periodic job %s failed", name)
