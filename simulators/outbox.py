"""A device's bounded outbox with a defined overflow behaviour.

A real sensor buffers a little while it cannot reach the broker, then loses data. The
outbox holds at most ``capacity`` items:

- ``put_nowait`` (live mode): when full, the **oldest telemetry** is dropped and counted
  (controls are never dropped), so the freshest data goes out after a reconnect;
- ``put`` (backfill): waits for room instead, so backfilling never loses data;
- ``requeue`` puts unacknowledged items back at the front (at-least-once; the ingest side
  deduplicates).
"""

import asyncio
from collections import deque
from collections.abc import Iterable
from datetime import datetime

from simulators.stream import Outgoing, OutgoingKind

__all__ = ["Outbox"]


class Outbox:
    """Bounded FIFO of outgoing items for one device.

    Args:
        capacity: maximum number of queued items.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            msg = "outbox capacity must be at least 1"
            raise ValueError(msg)
        self.capacity = capacity
        self.dropped = 0
        self.high_water = 0
        self._items: deque[Outgoing] = deque()
        self._not_empty = asyncio.Event()
        self._room = asyncio.Event()
        self._empty = asyncio.Event()
        self._room.set()
        self._empty.set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def oldest(self) -> datetime | None:
        """Simulated time of the first queued item (the oldest: requeued ones go first)."""
        return self._items[0].sim_time if self._items else None

    def put_nowait(self, item: Outgoing) -> None:
        """Queue ``item``; when full, drop the oldest telemetry to make room."""
        if len(self._items) >= self.capacity:
            self._drop_oldest_telemetry()
        self._append(item)

    async def put(self, item: Outgoing) -> None:
        """Queue ``item``, waiting while the outbox is full."""
        while len(self._items) >= self.capacity:
            self._room.clear()
            await self._room.wait()
        self._append(item)

    async def get(self, limit: int = 1) -> list[Outgoing]:
        """Wait for at least one item; take up to ``limit`` consecutive publishable items.

        Returns an empty list once the outbox is closed and empty.

        A control item (online/offline) is always returned alone, so it keeps its place
        between the telemetry before and after it.
        """
        while not self._items:
            if self._closed:
                return []
            self._not_empty.clear()
            await self._not_empty.wait()
        taken = [self._items.popleft()]
        if taken[0].kind in _PUBLISHABLE:
            while len(taken) < limit and self._items and self._items[0].kind in _PUBLISHABLE:
                taken.append(self._items.popleft())
        self._room.set()
        if not self._items:
            self._empty.set()
        return taken

    def requeue(self, items: Iterable[Outgoing]) -> None:
        """Put unacknowledged items back at the front, in their order (may exceed capacity)."""
        items = list(items)
        if items:
            self._items.extendleft(reversed(items))
            self._not_empty.set()
            self._empty.clear()

    def close(self) -> None:
        """No more items will come: :meth:`get` returns ``[]`` once the outbox is empty."""
        self._closed = True
        self._not_empty.set()

    async def wait_empty(self) -> None:
        """Wait until everything queued has been taken."""
        while self._items:
            self._empty.clear()
            await self._empty.wait()

    def _append(self, item: Outgoing) -> None:
        self._items.append(item)
        self.high_water = max(self.high_water, len(self._items))
        self._not_empty.set()
        self._empty.clear()

    def _drop_oldest_telemetry(self) -> None:
        for index, queued in enumerate(self._items):
            if queued.kind is OutgoingKind.TELEMETRY:
                del self._items[index]
                self.dropped += 1
                return


_PUBLISHABLE = (OutgoingKind.TELEMETRY, OutgoingKind.TRUTH)
