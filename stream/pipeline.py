"""The consume -> validate -> batch -> handle -> ack loop shared by ingest and processing.

A :class:`Pipeline` takes messages from a :class:`~stream.consumer.Consumer`, validates each
once, batches by size or age, and hands full batches over a bounded queue to a handler.
The handler is retried with jittered backoff until it succeeds (nothing is dropped); only
then are the batch's messages acknowledged, in arrival order. When the handler is stuck
(database down), the queue fills, the consumer's buffer fills, reading pauses, and the broker
holds the backlog.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from db import StorageError
from stream.backoff import backoff_delay
from stream.batcher import Batch, Batcher
from stream.consumer import Consumer
from stream.validate import Outcome, Validator

__all__ = ["Pipeline", "run_every"]

logger = logging.getLogger(__name__)

Handler = Callable[[Batch], Awaitable[None]]


class Pipeline:
    """Consume, validate, batch and handle messages, acking after the handler commits.

    Args:
        consumer: the MQTT consumer (entered by the caller).
        validator: turns raw messages into outcomes.
        batcher: the size/age policy.
        handler: writes a batch; raise :class:`~db.errors.StorageError` to retry it.
        queue_batches: full batches waiting for the handler (bounded).
        on_outcome: called for every outcome as it is validated (for counters).
        shutdown_grace_s: after :meth:`stop`, how long a failing handler is still retried;
            past it the remaining batches are left unacknowledged (the broker redelivers
            them to the next run), so a shutdown with the database down ends.
        concurrency: batches handled at once (each on its own database connection, so the
            database can use more than one core). Acks still go out in arrival order: a
            batch is acknowledged only when it and every batch before it have committed.
            Keep 1 where the handler's effects must follow arrival order (processing).
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

        Raises:
            Exception: whatever the handler raised other than a retryable
                :class:`~db.errors.StorageError` (its batch stays unacknowledged, so the
                broker redelivers it to whoever runs next).
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
            committed = task.result()  # re-raises a handler's bug
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
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout(None) as deadline:
                    if self._stop_at is not None:
                        deadline.reschedule(loop.time() + max(0.0, self._grace_left()))
                    self._attempts.add(deadline)
                    try:
                        await self._handler(batch)
                    finally:
                        self._attempts.discard(deadline)
                return True
            except TimeoutError:  # only ours: the handler turns its own into StorageError
                logger.error("batch not committed within the shutdown grace")
                return False
            except StorageError as exc:
                attempt += 1
                self.counts["handler_retries"] += 1
                delay = backoff_delay(attempt)
                if self._grace_left() <= delay:
                    logger.error("batch not committed (attempt %d) at shutdown: %s", attempt, exc)
                    return False
                log = logger.warning if attempt < 5 else logger.error
                log("batch not committed (attempt %d), retrying in %.1f s: %s", attempt, delay, exc)
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
    while True:
        await asyncio.sleep(interval_s)
        try:
            await job()
        except Exception:
            logger.exception("periodic job %s failed", getattr(job, "__name__", job))
