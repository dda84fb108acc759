"""No message can stop the pipeline: a handler that raises on some messages gets them isolated.

The pipeline runs on a consumer that never connects (its buffer is filled directly), so what
is tested is the loop itself: a batch whose handler raises anything but StorageError is
split until the messages that make it raise stand alone; those are handed to ``on_poison``
and every message of the stream is acknowledged, in arrival order, with nothing handled
twice and nothing skipped.
"""

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest

from contract import Registry
from db import RefusedError, StorageError
from stream.batcher import Batch, Batcher
from stream.consumer import Consumer, RawMessage
from stream.pipeline import Pipeline
from stream.validate import Outcome, Validator

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def _consumer(payloads: list[bytes]) -> Consumer:
    consumer = Consumer("mqtt://127.0.0.1:1", client_id="never-connected", subscriptions=[])
    for i, payload in enumerate(payloads):
        consumer._buffer.append(
            RawMessage("hanoi/v1/air/aq-x/telemetry", payload, i + 1, 1, NOW, 1)
        )
    consumer._ready.set()
    return consumer


class Recorder:
    """A handler that raises on poison payloads, and fails transiently now and then."""

    def __init__(self, poison: set[bytes], *, transient_every: int = 0) -> None:
        self.poison = poison
        self.transient_every = transient_every
        self.calls = 0
        self.handled: list[bytes] = []
        self.quarantined: list[tuple[bytes, str]] = []

    async def handle(self, batch: Batch) -> None:
        self.calls += 1
        if self.transient_every and self.calls % self.transient_every == 0:
            msg = "database away"
            raise StorageError(msg)
        bad = [o.message.payload for o in batch.outcomes if o.message.payload in self.poison]
        if bad:
            msg = f"cannot store {bad[0]!r}"
            raise RefusedError(msg) if len(bad) % 2 else ValueError(msg)
        self.handled.extend(o.message.payload for o in batch.outcomes)

    async def on_poison(self, outcome: Outcome, exc: Exception) -> None:
        self.quarantined.append((outcome.message.payload, type(exc).__name__))


async def _run(payloads: list[bytes], recorder: Recorder, max_messages: int) -> Pipeline:
    pipeline = Pipeline(
        _consumer(payloads),
        Validator(Registry({})),
        Batcher(max_readings=10**6, max_messages=max_messages, max_age_s=0.01),
        recorder.handle,
        on_poison=recorder.on_poison,
        retry_max_s=0.01,
    )
    task = asyncio.create_task(pipeline.run())
    async with asyncio.timeout(20):
        while pipeline.counts["acked_messages"] < len(payloads):
            assert not task.done(), task
            await asyncio.sleep(0.01)
    pipeline.stop()
    await task
    return pipeline


@pytest.mark.parametrize("max_messages", [1, 7, 64])
async def test_poison_messages_are_isolated_and_everything_is_acknowledged(
    max_messages: int,
) -> None:
    payloads = [f"m{i}".encode() for i in range(200)]
    poison = {b"m0", b"m13", b"m14", b"m99", b"m199"}
    recorder = Recorder(poison, transient_every=5)
    pipeline = await _run(payloads, recorder, max_messages)
    assert sorted(recorder.handled) == sorted(set(payloads) - poison)
    assert Counter(recorder.handled) == Counter(set(payloads) - poison)  # none twice
    assert sorted(p for p, _ in recorder.quarantined) == sorted(poison)
    assert pipeline.counts["acked_messages"] == len(payloads)
    assert pipeline.counts["poison_messages"] == len(poison)
    assert pipeline.counts["handler_retries"] > 0


async def test_a_handler_that_fails_on_everything_quarantines_everything() -> None:
    payloads = [f"m{i}".encode() for i in range(30)]
    recorder = Recorder(set(payloads))
    pipeline = await _run(payloads, recorder, 8)
    assert recorder.handled == []
    assert sorted(p for p, _ in recorder.quarantined) == sorted(payloads)
    assert pipeline.counts["acked_messages"] == len(payloads)


async def test_a_poison_that_cannot_even_be_recorded_is_acknowledged_and_counted() -> None:
    recorder = Recorder({b"m3"})

    async def broken(outcome: Outcome, exc: Exception) -> None:
        msg = "the quarantine table refuses it too"
        raise RuntimeError(msg)

    recorder.on_poison = broken  # type: ignore[method-assign]
    pipeline = await _run([f"m{i}".encode() for i in range(6)], recorder, 6)
    assert pipeline.counts["poison_unrecorded"] == 1
    assert pipeline.counts["acked_messages"] == 6
