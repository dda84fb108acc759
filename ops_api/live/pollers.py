"""The shared pollers of the live feed: one task each for readings and station states.

However many clients subscribe, the ``latest`` table is read by one task once per
``readings_poll_s`` and station states by one task once per ``status_poll_s``; each poll
keeps only what changed and offers it to every client (which coalesce per key). With no
subscriber a poller idles and forgets its state, so the first poll after a subscription
reads everything and doubles as the snapshot.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import psycopg
from psycopg_pool import PoolTimeout

from contract import StaleRule, now_utc
from ops_api.live.client import LiveClient, LiveReading, LiveStatus
from ops_api.queries import Pool, list_latest, list_stations

__all__ = ["PollStats", "ReadingsPoller", "StatusPoller"]

logger = logging.getLogger(__name__)

# Rows become visible at commit, which can lag their received_at; re-read this far back.
_RECEIVED_SLACK: Final = timedelta(seconds=30)


@dataclass(slots=True)
class PollStats:
    """Counters of one poller."""

    polls: int = 0
    errors: int = 0
    changes: int = 0


class _Poller(abc.ABC):
    """Sleep, poll when someone listens, offer changes; never give up on DB errors."""

    name = "poller"

    def __init__(self, pool: Pool, period_s: float, clients: Callable[[], Iterable[LiveClient]]):
        self._pool = pool
        self._period_s = period_s
        self._clients = clients
        self._poke = asyncio.Event()
        self.stats = PollStats()

    def poke(self) -> None:
        """Poll now rather than at the end of the current period."""
        self._poke.set()

    @abc.abstractmethod
    def _wanted(self) -> bool:
        """True when some client listens to this poller's channel."""

    @abc.abstractmethod
    def _reset(self) -> None:
        """Forget what was seen (nobody listens any more)."""

    @abc.abstractmethod
    async def _poll(self) -> None:
        """Read the changes since the last poll and offer them to the clients."""

    async def run(self) -> None:
        """Poll forever (cancel to stop)."""
        while True:
            if self._wanted():
                try:
                    await self._poll()
                    self.stats.polls += 1
                except (psycopg.Error, PoolTimeout) as exc:
                    self.stats.errors += 1
                    logger.warning("%s poll failed: %s", self.name, exc)
            else:
                self._reset()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._period_s):
                    await self._poke.wait()
            self._poke.clear()


class ReadingsPoller(_Poller):
    """Reads changed rows of ``latest`` and offers them to readings subscribers."""

    name = "readings"

    def __init__(self, pool: Pool, period_s: float, clients: Callable[[], Iterable[LiveClient]]):
        super().__init__(pool, period_s, clients)
        self.current: dict[int, LiveReading] = {}
        self._cursor: datetime | None = None

    def _wanted(self) -> bool:
        return any(c.readings is not None for c in self._clients())

    def _reset(self) -> None:
        self.current.clear()
        self._cursor = None

    async def _poll(self) -> None:
        after = None if self._cursor is None else self._cursor - _RECEIVED_SLACK
        async with self._pool.connection() as conn:
            rows = await list_latest(conn, received_after=after)
        changed: list[LiveReading] = []
        for row in rows:
            reading = LiveReading(
                row.sensor_id,
                row.station_id,
                row.domain,
                row.quantity,
                row.unit,
                row.value,
                row.quality,
                row.time,
            )
            if self.current.get(row.sensor_id) != reading:
                self.current[row.sensor_id] = reading
                changed.append(reading)
            if self._cursor is None or row.received_at > self._cursor:
                self._cursor = row.received_at
        if changed:
            self.stats.changes += len(changed)
            for client in self._clients():
                client.offer_readings(changed)


class StatusPoller(_Poller):
    """Recomputes every station's effective state and offers the changes."""

    name = "status"

    def __init__(
        self,
        pool: Pool,
        period_s: float,
        clients: Callable[[], Iterable[LiveClient]],
        stale_rule: StaleRule,
    ):
        super().__init__(pool, period_s, clients)
        self.current: dict[str, LiveStatus] = {}
        self._rule = stale_rule

    def _wanted(self) -> bool:
        return any(c.status is not None for c in self._clients())

    def _reset(self) -> None:
        self.current.clear()

    async def _poll(self) -> None:
        async with self._pool.connection() as conn:
            rows = await list_stations(conn)
        now = now_utc()
        changed: list[LiveStatus] = []
        for row in rows:
            state = self._rule.state(
                row.reported_state, row.state_since, row.last_received, row.min_interval_s, now
            )
            status = LiveStatus(
                row.station_id,
                row.domain,
                state,
                row.reported_state,
                row.state_since,
                row.state_reason,
                row.last_received,
            )
            previous = self.current.get(row.station_id)
            # last_received moves with every reading: only a state change is news.
            if previous is None or _key(previous) != _key(status):
                changed.append(status)
            self.current[row.station_id] = status
        if changed:
            self.stats.changes += len(changed)
            for client in self._clients():
                client.offer_status(changed)


def _key(status: LiveStatus) -> tuple[str, str | None, datetime | None, str | None]:
    return status.state, status.reported_state, status.since, status.reason
