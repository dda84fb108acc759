"""The device outbox: bounded, drop-oldest in live mode, waiting in backfill, ordered."""

import asyncio
from datetime import UTC, datetime

import pytest

from simulators.outbox import Outbox
from simulators.stream import Outgoing, OutgoingKind

T = datetime(2025, 1, 1, tzinfo=UTC)


def item(n: int, kind: OutgoingKind = OutgoingKind.TELEMETRY) -> Outgoing:
    return Outgoing(T, "aq-kim-lien", kind, "hanoi/v1/air/aq-kim-lien/telemetry", str(n).encode())


@pytest.mark.anyio
async def test_live_overflow_drops_the_oldest_telemetry_and_counts_it() -> None:
    box = Outbox(3)
    box.put_nowait(item(0, OutgoingKind.OFFLINE))
    for n in range(1, 6):
        box.put_nowait(item(n))
    assert box.dropped == 3
    taken = [i for _ in range(3) for i in await box.get(1)]
    assert [i.payload for i in taken] == [b"0", b"4", b"5"]  # the control survives


@pytest.mark.anyio
async def test_backfill_put_waits_for_room() -> None:
    box = Outbox(2)
    await box.put(item(1))
    await box.put(item(2))
    waiter = asyncio.create_task(box.put(item(3)))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    assert [i.payload for i in await box.get(5)] == [b"1", b"2"]
    await asyncio.wait_for(waiter, 1.0)
    assert box.dropped == 0


@pytest.mark.anyio
async def test_controls_come_alone_and_requeue_keeps_order() -> None:
    box = Outbox(10)
    for n in (1, 2):
        box.put_nowait(item(n))
    box.put_nowait(item(3, OutgoingKind.OFFLINE))
    first = await box.get(10)
    assert [i.payload for i in first] == [b"1", b"2"]
    box.requeue(first)
    assert [i.payload for i in await box.get(10)] == [b"1", b"2"]
    assert (await box.get(10))[0].kind is OutgoingKind.OFFLINE
    box.close()
    assert await box.get(10) == []
