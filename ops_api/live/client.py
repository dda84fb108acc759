"""One WebSocket client's subscriptions and bounded outboxes (no I/O).

The broadcaster *offers* values to every client; the client keeps what matches its filters:

- alert events in a bounded FIFO; on overflow it stops taking more, and once what was
  queued has been sent it emits ``resync`` with the last id it delivered (while replaying
  stored events an overflow is harmless: the queue is dropped and the replay reads on);
- readings and station states in dicts keyed by sensor/station, so a newer value replaces
  an unsent older one (coalescing) and the outbox never holds more than one value per key;
- control messages (hello, subscribed, pong, ...) in a small FIFO; a client that floods it
  is disconnected.

The WebSocket sender task (:mod:`ops_api.live.ws`) sleeps on :attr:`LiveClient.wake` and
calls the ``take_*`` methods.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from pydantic import BaseModel

from contract import StationStateName, now_utc
from ops_api.auth import Principal
from ops_api.live.messages import (
    LiveReadingOut,
    PingMessage,
    ReadingsMessage,
    ResyncMessage,
    StationStatusOut,
    StatusMessage,
)

__all__ = [
    "AlertFilter",
    "AlertSubscription",
    "ClientFloodError",
    "LiveAlert",
    "LiveClient",
    "LiveReading",
    "LiveStatus",
    "ScopeFilter",
]

_CONTROL_MAX: Final = 64


class ClientFloodError(Exception):
    """The client sends requests faster than it reads the answers."""


@dataclass(frozen=True, slots=True)
class LiveAlert:
    """An alert event ready to fan out: the filter fields and the JSON text, encoded once."""

    event_id: int
    severity_rank: int
    domain: str | None
    station_id: str | None
    text: str


@dataclass(frozen=True, slots=True)
class LiveReading:
    """The newest value of one sensor, as polled from ``latest``."""

    sensor_id: int
    station_id: str
    domain: str
    quantity: str
    unit: str
    value: float
    quality: int
    time: datetime

    def out(self) -> LiveReadingOut:
        """The wire form."""
        return LiveReadingOut(
            sensor=f"{self.station_id}.{self.quantity}",
            station_id=self.station_id,
            domain=self.domain,
            quantity=self.quantity,
            unit=self.unit,
            value=self.value,
            quality=self.quality,
            time=self.time,
        )


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """A station's effective state."""

    station_id: str
    domain: str
    state: StationStateName
    reported_state: str | None
    since: datetime | None
    reason: str | None
    last_received: datetime | None

    def out(self) -> StationStatusOut:
        """The wire form."""
        return StationStatusOut(
            station_id=self.station_id,
            domain=self.domain,
            state=self.state,
            reported_state=self.reported_state,
            since=self.since,
            reason=self.reason,
            last_received=self.last_received,
        )


@dataclass(frozen=True, slots=True)
class ScopeFilter:
    """Which domains/stations/quantities a readings or status subscription wants.

    ``None`` means "any"; an empty set matches nothing (a scope that excludes everything).
    """

    domains: frozenset[str] | None = None
    stations: frozenset[str] | None = None
    quantities: frozenset[str] | None = None

    def matches(
        self, domain: str | None, station_id: str | None, quantity: str | None = None
    ) -> bool:
        """Whether a value with these attributes passes."""
        return (
            _admits(self.domains, domain)
            and _admits(self.stations, station_id)
            and (quantity is None or _admits(self.quantities, quantity))
        )


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alert events an ``alerts`` subscription wants."""

    min_rank: int = 0
    scope: ScopeFilter = field(default_factory=ScopeFilter)

    def matches(self, item: LiveAlert) -> bool:
        """Whether ``item`` passes."""
        return item.severity_rank >= self.min_rank and self.scope.matches(
            item.domain, item.station_id
        )


def _admits(allowed: frozenset[str] | None, value: str | None) -> bool:
    return allowed is None or (value is not None and value in allowed)


@dataclass(slots=True)
class AlertSubscription:
    """State of one client's ``alerts`` channel.

    Args:
        filter: what it wants.
        cursor: every event up to this id was delivered or did not match.
        replaying: whether stored events are still being replayed (from ``cursor``).
        live_floor: the broadcaster's newest id when the subscription began; replayed ids
            above it may also arrive live and are skipped there.
        resumed_from: the client's ``resume_from``; nothing at or below it is sent again.
        replayed: replayed ids above ``live_floor`` not yet seen live.
        reread: live events were dropped during the replay; read one more page.
        overflowed: the live queue overflowed; the client must resync.
    """

    filter: AlertFilter
    cursor: int
    replaying: bool
    live_floor: int
    resumed_from: int | None = None
    replayed: set[int] = field(default_factory=set)
    reread: bool = False
    overflowed: bool = False

    def finish_page(self, short: bool) -> bool:
        """After a replay page: whether the replay is done (a short page, nothing dropped)."""
        if short and not self.reread:
            self.replaying = False
        self.reread = False
        return not self.replaying


class LiveClient:
    """One connected client.

    Args:
        client_id: a process-unique number (for logs).
        principal: who it is.
        key: what its per-token limit counts (its token, or its address when anonymous).
        alert_queue_size: alert events buffered before it must resync.
        readings_rate_hz: the most readings batches per second it may get.
    """

    def __init__(
        self,
        client_id: int,
        principal: Principal,
        *,
        key: str = "",
        alert_queue_size: int,
        readings_rate_hz: float,
    ) -> None:
        self.client_id = client_id
        self.principal = principal
        self.key = key
        self.wake = asyncio.Event()
        self.acked = asyncio.Event()
        self.unacked_bytes = 0
        self._ping_seq = 0
        self._pending_ping: tuple[int, float] | None = None
        self.alerts: AlertSubscription | None = None
        self.readings: ScopeFilter | None = None
        self.status: ScopeFilter | None = None
        self.readings_rate_hz = readings_rate_hz
        self._alert_queue_size = alert_queue_size
        self._alert_queue: deque[LiveAlert] = deque()
        self._control: deque[str] = deque()
        self._readings: dict[int, LiveReading] = {}
        self._status: dict[str, LiveStatus] = {}
        self._readings_coalesced = 0
        self._next_readings_at = 0.0

    # --- liveness ----------------------------------------------------------------------------

    def ping(self, now: float) -> PingMessage | None:
        """A new server ``ping`` to send, unless one is still unanswered (then ``None``)."""
        if self._pending_ping is not None:
            return None
        self._ping_seq += 1
        self._pending_ping = (self._ping_seq, now)
        self.acked.clear()
        return PingMessage(id=self._ping_seq, server_time=now_utc())

    def pong(self, ping_id: object) -> None:
        """The client answered ``ping_id``: it has read everything sent before that ping."""
        pending = self._pending_ping
        if pending is None or not isinstance(ping_id, int) or isinstance(ping_id, bool):
            return
        if pending[0] <= ping_id <= self._ping_seq:
            self._pending_ping = None
            self.unacked_bytes = 0
            self.acked.set()

    def unanswered_for(self, now: float) -> float:
        """Seconds the oldest unanswered ``ping`` has been waiting (0 when none is)."""
        return 0.0 if self._pending_ping is None else now - self._pending_ping[1]

    # --- producers (broadcaster side) ---------------------------------------------------------

    def push_control(self, message: BaseModel) -> None:
        """Queue a control message.

        Raises:
            ClientFloodError: when more than a few are waiting (the client does not read).
        """
        if len(self._control) >= _CONTROL_MAX:
            raise ClientFloodError(str(self.client_id))
        self._control.append(message.model_dump_json())
        self.wake.set()

    def offer_alert(self, item: LiveAlert) -> None:
        """Queue an alert event if it matches; on overflow stop taking and plan a resync."""
        sub = self.alerts
        if sub is None or sub.overflowed or not sub.filter.matches(item):
            return
        if sub.resumed_from is not None and item.event_id <= sub.resumed_from:
            return  # the client said it has everything up to there (e.g. a late catch-up)
        if item.event_id in sub.replayed:
            # Sent by the replay and now heard live (late): it must not take a place in the
            # queue, or a few of these could overflow it ahead of a new event.
            sub.replayed.discard(item.event_id)
            return
        if len(self._alert_queue) < self._alert_queue_size:
            self._alert_queue.append(item)
        elif sub.replaying:
            # Everything offered is committed, so one more replay page reads it all again.
            self._alert_queue.clear()
            sub.reread = True
        else:
            sub.overflowed = True
        self.wake.set()

    def offer_readings(self, readings: Iterable[LiveReading]) -> None:
        """Keep the newest matching value per sensor (replacing an unsent one)."""
        wanted = self.readings
        if wanted is None:
            return
        for reading in readings:
            if wanted.matches(reading.domain, reading.station_id, reading.quantity):
                if reading.sensor_id in self._readings:
                    self._readings_coalesced += 1
                self._readings[reading.sensor_id] = reading
        if self._readings:
            self.wake.set()

    def offer_status(self, states: Iterable[LiveStatus]) -> None:
        """Keep the newest matching state per station."""
        wanted = self.status
        if wanted is None:
            return
        for state in states:
            if wanted.matches(state.domain, state.station_id):
                self._status[state.station_id] = state
        if self._status:
            self.wake.set()

    # --- subscriptions ------------------------------------------------------------------------

    def subscribe_alerts(self, flt: AlertFilter, resume_from: int | None, live_floor: int) -> None:
        """Start (or restart) the alerts channel; replay from ``resume_from`` when given."""
        self._alert_queue.clear()
        cursor = live_floor if resume_from is None else resume_from
        self.alerts = AlertSubscription(
            flt, cursor, resume_from is not None, live_floor, resumed_from=resume_from
        )
        self.wake.set()

    def unsubscribe(self, channel: str) -> None:
        """Stop a channel and drop what it had queued."""
        if channel == "alerts":
            self.alerts = None
            self._alert_queue.clear()
        elif channel == "readings":
            self.readings = None
            self._readings.clear()
        else:
            self.status = None
            self._status.clear()

    # --- consumer (sender side) ---------------------------------------------------------------

    def take_control(self) -> list[str]:
        """Control messages to send now."""
        taken = list(self._control)
        self._control.clear()
        return taken

    def take_alerts(self) -> list[str]:
        """Queued live alert events to send now, then ``resync`` if the queue overflowed."""
        sub = self.alerts
        if sub is None or sub.replaying:
            return []
        texts: list[str] = []
        while self._alert_queue:
            item = self._alert_queue.popleft()
            if item.event_id in sub.replayed:
                # Sent during the replay; the broadcaster offers each event once, so forget it.
                sub.replayed.discard(item.event_id)
                continue
            texts.append(item.text)
            sub.cursor = max(sub.cursor, item.event_id)
        if sub.overflowed:
            resync = ResyncMessage(resume_from=sub.cursor, reason="alert queue overflow")
            texts.append(resync.model_dump_json())
            self.alerts = None
        return texts

    def note_replayed(self, event_ids: Iterable[int], scanned_to: int) -> None:
        """Record a replayed page: ``scanned_to`` is its last id (matching or not)."""
        sub = self.alerts
        if sub is None:
            return
        sub.replayed.update(i for i in event_ids if i > sub.live_floor)
        sub.cursor = max(sub.cursor, scanned_to)

    def take_status(self) -> str | None:
        """A status batch, if any state changed."""
        if not self._status:
            return None
        states = [s.out() for s in self._status.values()]
        self._status.clear()
        return StatusMessage(stations=states).model_dump_json()

    def readings_delay(self, now: float) -> float | None:
        """Seconds until a readings batch may go (``None``: nothing waiting)."""
        if not self._readings:
            return None
        return max(0.0, self._next_readings_at - now)

    def take_readings(self, now: float) -> tuple[str, int] | None:
        """A readings batch (and how many values it coalesced), if the rate allows one."""
        if not self._readings or now < self._next_readings_at:
            return None
        batch = ReadingsMessage(
            coalesced=self._readings_coalesced, readings=[r.out() for r in self._readings.values()]
        )
        coalesced, self._readings_coalesced = self._readings_coalesced, 0
        self._readings.clear()
        self._next_readings_at = now + 1.0 / self.readings_rate_hz
        return batch.model_dump_json(), coalesced
