"""The live feed's hub: LISTEN for alert events, poll readings/states, fan out to clients.

One dedicated connection runs ``LISTEN alert_events`` (the table's trigger notifies each
committed event id). Every event row is read once, encoded once, and offered to every
client's bounded queue (:class:`~ops_api.live.client.LiveClient`). When the connection
drops, the listener reconnects with jittered exponential backoff, never giving up
(``/health`` shows it as disconnected meanwhile), and first catches up on every event
after the last id it saw, so nothing committed during the outage is lost; events that
arrive both by catch-up and by notification are delivered once.

:class:`Broadcaster` is an async context manager that owns its three tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self

import psycopg
from psycopg_pool import PoolTimeout

from contract import StaleRule
from ops_api.alert_queries import (
    AlertRecord,
    alerts_by_ids,
    current_event_id,
    events_after,
    events_by_ids,
)
from ops_api.alert_schemas import AlertEventOut, AlertOut
from ops_api.auth import Principal
from ops_api.live.client import AlertFilter, LiveAlert, LiveClient, ScopeFilter
from ops_api.live.messages import AlertEventMessage
from ops_api.live.pollers import ReadingsPoller, StatusPoller
from ops_api.queries import Pool
from ops_api.settings import ApiSettings
from processing.alerts import AlertEvent
from stream.backoff import Backoff

__all__ = ["Broadcaster", "LiveStats"]

logger = logging.getLogger(__name__)

CHANNEL: Final = "alert_events"
LISTENER_NAME: Final = "hanoi-ops-api-listener"  # application_name, for pg_stat_activity
_PROBE_S: Final = 5.0  # an idle LISTEN connection is checked with SELECT 1 this often
_RECENT_IDS: Final = 4096
_CONNECT_TIMEOUT_S: Final = 10


@dataclass(slots=True)
class LiveStats:
    """Counters of the live feed (exported on /metrics and /health)."""

    connections: int = 0
    refused: int = 0
    refused_per_token: int = 0
    auth_failures: int = 0
    dropped_not_reading: int = 0
    dropped_send_timeout: int = 0
    dropped_flooding: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    resyncs: int = 0
    readings_coalesced: int = 0
    alert_events: int = 0
    listen_reconnects: int = 0
    listen_connected: bool = False


class _RecentIds:
    """The last few thousand delivered event ids (catch-up and NOTIFY can overlap)."""

    def __init__(self, size: int) -> None:
        self._order: deque[int] = deque()
        self._ids: set[int] = set()
        self._size = size

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: int) -> None:
        self._order.append(event_id)
        self._ids.add(event_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())


class Broadcaster:
    """Owns the alert listener and the shared pollers, and the set of live clients.

    Args:
        settings: limits, poll periods and backoff.
        pool: the API's pool (used for reading event rows and polling).
        stale_rule: when a station counts as stale.
    """

    def __init__(self, settings: ApiSettings, pool: Pool, stale_rule: StaleRule) -> None:
        self._settings = settings
        self._pool = pool
        self._clients: dict[int, LiveClient] = {}
        self._reserved = 0
        self._pending = 0
        self._per_key: Counter[str] = Counter()
        self._next_id = 0
        self._recent = _RecentIds(_RECENT_IDS)
        self._started = False
        # jittered: many API replicas restarting together do not reconnect in step
        self._backoff = Backoff(settings.listen_backoff_initial_s, settings.listen_backoff_max_s)
        self._tasks: list[asyncio.Task[None]] = []
        self.last_event_id = 0
        self.stats = LiveStats()
        self.readings = ReadingsPoller(pool, settings.readings_poll_s, self.clients)
        self.status = StatusPoller(pool, settings.status_poll_s, self.clients, stale_rule)

    async def __aenter__(self) -> Self:
        await self._read_floor()
        runs = {
            "ops-api-alert-listener": self._listen_forever(),
            "ops-api-readings-poller": self.readings.run(),
            "ops-api-status-poller": self.status.run(),
        }
        for name, coro in runs.items():
            task = asyncio.create_task(coro, name=name)
            task.add_done_callback(_log_crash)
            self._tasks.append(task)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task  # cancelled by us just above
        self._tasks.clear()

    # --- clients ------------------------------------------------------------------------------

    def clients(self) -> list[LiveClient]:
        """The attached clients."""
        return list(self._clients.values())

    @property
    def connected(self) -> int:
        """Open WebSocket connections (authenticated or not yet)."""
        return self._reserved

    def reserve(self) -> bool:
        """Take a connection slot, not yet authenticated.

        ``False`` (and counted) when the server is full or too many connections are still
        authenticating.
        """
        settings = self._settings
        if self._reserved >= settings.ws_max_clients or self._pending >= settings.ws_max_pending:
            self.stats.refused += 1
            return False
        self._reserved += 1
        self._pending += 1
        self.stats.connections += 1
        return True

    def authenticated(self) -> None:
        """A reserved connection finished authenticating (its slot is no longer pending)."""
        self._pending -= 1

    def release(self, *, pending: bool) -> None:
        """Give a slot back."""
        self._reserved -= 1
        if pending:
            self._pending -= 1

    def attach(self, principal: Principal, key: str) -> LiveClient | None:
        """Register an authenticated client.

        ``None`` (and counted) when ``key`` — its token, or its address when anonymous —
        already holds ``ws_max_clients_per_token`` connections.
        """
        if self._per_key[key] >= self._settings.ws_max_clients_per_token:
            self.stats.refused_per_token += 1
            return None
        self._per_key[key] += 1
        self._next_id += 1
        client = LiveClient(
            self._next_id,
            principal,
            key=key,
            alert_queue_size=self._settings.ws_alert_queue_size,
            readings_rate_hz=self._settings.ws_readings_max_rate_hz,
        )
        self._clients[client.client_id] = client
        return client

    def detach(self, client: LiveClient) -> None:
        """Forget a client."""
        if self._clients.pop(client.client_id, None) is not None:
            self._per_key[client.key] -= 1
            if self._per_key[client.key] <= 0:
                del self._per_key[client.key]

    def subscribe_alerts(
        self, client: LiveClient, flt: AlertFilter, resume_from: int | None
    ) -> None:
        """Start a client's alert channel (replaying from ``resume_from`` when given)."""
        client.subscribe_alerts(flt, resume_from, live_floor=self.last_event_id)

    def subscribe_readings(self, client: LiveClient, flt: ScopeFilter, rate_hz: float) -> None:
        """Start a client's readings channel and hand it the current values."""
        client.readings = flt
        client.readings_rate_hz = rate_hz
        client.offer_readings(self.readings.current.values())
        self.readings.poke()

    def subscribe_status(self, client: LiveClient, flt: ScopeFilter) -> None:
        """Start a client's status channel and hand it the current states."""
        client.status = flt
        client.offer_status(self.status.current.values())
        self.status.poke()

    async def replay_page(self, after_id: int, limit: int) -> list[LiveAlert]:
        """Stored events after ``after_id`` (at most ``limit``), encoded as replays."""
        async with self._pool.connection() as conn:
            events = await events_after(conn, after_id, limit)
            records = await alerts_by_ids(conn, sorted({e.alert_id for e in events}))
        return [_encode(e, records.get(e.alert_id), replay=True) for e in events]

    # --- the alert listener -------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen_once()
            except (psycopg.Error, PoolTimeout, OSError, TimeoutError) as exc:
                self.stats.listen_connected = False
                self.stats.listen_reconnects += 1
                delay = self._backoff.next_delay(time.monotonic())
                logger.warning("alert LISTEN lost (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def _listen_once(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._settings.database_url,
            autocommit=True,
            connect_timeout=_CONNECT_TIMEOUT_S,
            application_name=LISTENER_NAME,
        )
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.stats.listen_connected = True
            await self._catch_up()
            self._backoff.reset()
            logger.info("listening on %s from event %d", CHANNEL, self.last_event_id)
            while True:
                # Wake on the first notification, then take whatever else is already here.
                first = [n.payload async for n in conn.notifies(timeout=_PROBE_S, stop_after=1)]
                if not first:
                    async with asyncio.timeout(_PROBE_S):
                        await conn.execute("SELECT 1")  # is the idle connection still alive?
                    continue
                more = [n.payload async for n in conn.notifies(timeout=0)]
                ids = (_event_id(payload) for payload in first + more)
                await self._deliver_ids([i for i in ids if i is not None])

    async def _read_floor(self) -> None:
        """Note the newest event id at start-up, so the first LISTEN catches up from it.

        Without this, events committed between start-up and the first LISTEN would be
        neither notified nor caught up. With the database away, the first connection sets
        the floor instead.
        """
        try:
            async with self._pool.connection(timeout=self._settings.db_timeout_s) as conn:
                self.last_event_id = await current_event_id(conn)
            self._started = True
        except (psycopg.Error, PoolTimeout) as exc:
            logger.warning("alert feed starts without the database: %s", exc)

    async def _catch_up(self) -> None:
        """Deliver what was committed since the last event seen (nothing on a cold start)."""
        if not self._started:
            async with self._pool.connection() as conn:
                self.last_event_id = max(self.last_event_id, await current_event_id(conn))
            self._started = True
            return
        page = self._settings.ws_replay_page_size
        while True:
            async with self._pool.connection() as conn:
                events = await events_after(conn, self.last_event_id, page)
            await self._deliver(events)
            if len(events) < page:
                return

    async def _deliver_ids(self, ids: Sequence[int]) -> None:
        fresh = [i for i in ids if i not in self._recent]
        if not fresh:
            return
        async with self._pool.connection() as conn:
            events = await events_by_ids(conn, fresh)
        await self._deliver(events)

    async def _deliver(self, events: Iterable[AlertEvent]) -> None:
        pending = [e for e in events if e.event_id not in self._recent]
        if not pending:
            return
        async with self._pool.connection() as conn:
            records = await alerts_by_ids(conn, sorted({e.alert_id for e in pending}))
        clients = self.clients()
        for event in pending:
            self._recent.add(event.event_id)
            self.last_event_id = max(self.last_event_id, event.event_id)
            self.stats.alert_events += 1
            item = _encode(event, records.get(event.alert_id), replay=False)
            for client in clients:
                client.offer_alert(item)


def _encode(event: AlertEvent, record: AlertRecord | None, *, replay: bool) -> LiveAlert:
    alert = None if record is None else AlertOut.from_record(record)
    message = AlertEventMessage(replay=replay, event=AlertEventOut.from_event(event), alert=alert)
    severity = record.alert.severity if record is not None else event.severity
    return LiveAlert(
        event_id=event.event_id,
        severity_rank=0 if severity is None else severity.rank,
        domain=None if record is None else record.alert.domain,
        station_id=None if record is None else record.alert.station_id,
        text=message.model_dump_json(),
    )


def _event_id(payload: str) -> int | None:
    try:
        return int(payload)
    except ValueError:
        logger.warning("ignoring NOTIFY %s with payload %r", CHANNEL, payload[:64])
        return None


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s stopped", task.get_name(), exc_info=task.exception())
