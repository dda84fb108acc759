"""MQTT consumer with persistent session and acknowledgements after commit.

aiomqtt 2.x acknowledges every message as soon as it is handed over and has no public API
for manual acks (aiomqtt issue #345), so the consumer drives paho-mqtt 2.x directly from the
asyncio loop through paho's documented socket callbacks, with ``manual_ack=True``:

- the session is persistent (fixed client id, ``clean_start=False``, session expiry), so
  messages published while we are away wait in the broker;
- MQTT 5 ``Receive Maximum`` caps unacknowledged messages in flight; as a second guard the
  local buffer is bounded and reading from the socket pauses when it is full, so the broker,
  not our memory, holds any backlog;
- :meth:`Consumer.ack` is called by the writer after the commit, in arrival order. A message
  received on an earlier connection is not acked (its packet id means nothing to the new
  connection): the broker redelivers it and the idempotent writer counts it as a duplicate;
- the connection is re-established with jittered exponential backoff, every attempt counted;
- retained messages: a :class:`Subscription` says whether the broker may send the retained
  messages of its topics when it is made (MQTT 5 "retain handling"). Telemetry subscriptions
  take none (a retained measurement is an old message, not a new one), status subscriptions
  take them only when the subscription is new (a first start learns every station's state; a
  reconnect of a persistent session does not hear them all again).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

from contract import parse_mqtt_url
from stream.backoff import backoff_delay
from stream.mqtt_socket import BufferedClient

__all__ = ["Consumer", "ConsumerStats", "RawMessage", "Subscription"]

logger = logging.getLogger(__name__)

_MISC_INTERVAL_S: Final = 1.0
_CLAIM_CHARS: Final = 64
_READ_BURST: Final = 256
"""Packets read per wake-up of the event loop at most (paho reads one per ``loop_read``)."""


class RawMessage(msgspec.Struct, frozen=True, gc=False):
    """One MQTT message as received, before decoding.

    (A msgspec ``Struct`` rather than a frozen dataclass: one is built per message, and a
    frozen dataclass costs about 1.9 µs to build against 0.17 µs.)

    Args:
        topic: the topic it was published on.
        payload: raw bytes.
        mid: packet id (meaningful only on the connection it arrived on).
        qos: delivery QoS.
        received_at: tz-aware UTC arrival time.
        generation: which connection it arrived on.
        publisher: the publisher's ``client`` MQTT 5 user property, when it set one (a
            claim: any publisher may set it; the topic is what the broker vouches for).
        retain: whether it was a retained message.
    """

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    generation: int
    publisher: str | None = None
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic filter and whether the broker may send its retained messages.

    Args:
        topic: the filter (``$share/<group>/...`` for a shared subscription).
        retained: ``never`` (MQTT 5 retain handling 2), ``new`` (only when the subscription
            did not exist yet: 1) or ``always`` (0). MQTT 3.1.1 has no such option: there
            the broker always sends them, flagged as retained.
    """

    topic: str
    retained: Literal["never", "new", "always"] = "never"

    @property
    def retain_handling(self) -> int:
        """The MQTT 5 subscription option."""
        return {"always": 0, "new": 1, "never": 2}[self.retained]


@dataclass(slots=True)
class ConsumerStats:
    """Counters of one consumer."""

    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    received: int = 0
    acked: int = 0
    acks_skipped_stale: int = 0
    paused: int = 0


class Consumer:
    """Subscribes with a persistent session and yields :class:`RawMessage` values.

    Args:
        url: ``mqtt://host:port`` (``mqtts://`` for TLS, credentials in the URL).
        client_id: stable client id; the broker keeps the session under it.
        subscriptions: topic filters (``$share/<group>/...`` for shared subscriptions); a
            plain string takes no retained messages.
        protocol: ``"5"`` (default) or ``"3.1.1"`` for brokers without MQTT 5.
        session_expiry_s: how long the broker keeps the session while we are away.
        receive_maximum: MQTT 5 in-flight window; also the local buffer bound.
        buffer_max_bytes: the local buffer's bound in payload bytes (reading pauses beyond
            it, so a window of large gateway packs cannot take unbounded memory).
        manual_ack: ack only through :meth:`ack` (False: ack on receipt).
        keepalive_s: MQTT keepalive.
        backoff_max_s: upper bound of the reconnect delay.
        username: broker user (default: the URL's).
        password: the password, asked for at every connection attempt, so a rotated
            credential is picked up without a restart (default: the URL's).
        ca_file: CA bundle the broker's TLS certificate must chain to (``mqtts://``; default:
            the system's). The broker's host name is always verified.
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        subscriptions: Sequence[str | Subscription],
        protocol: Literal["5", "3.1.1"] = "5",
        session_expiry_s: int = 7 * 86400,
        receive_maximum: int = 4000,
        buffer_max_bytes: int = 64 * 1024 * 1024,
        manual_ack: bool = True,
        keepalive_s: int = 30,
        backoff_max_s: float = 5.0,
        username: str | None = None,
        password: Callable[[], str | None] | None = None,
        ca_file: str | None = None,
    ) -> None:
        self._address = parse_mqtt_url(url)
        self._username = username if username is not None else self._address.username
        url_password = self._address.password
        self._password = password if password is not None else (lambda: url_password)
        self._ca_file = ca_file
        self._client_id = client_id
        self._subscriptions = [
            s if isinstance(s, Subscription) else Subscription(s) for s in subscriptions
        ]
        self._v5 = protocol == "5"
        self._session_expiry_s = session_expiry_s
        self._capacity = receive_maximum
        self._max_bytes = buffer_max_bytes
        self._bytes = 0
        self._manual_ack = manual_ack
        self._keepalive_s = keepalive_s
        self._backoff_max_s = backoff_max_s
        self._buffer: collections.deque[RawMessage] = collections.deque()
        self._ready = asyncio.Event()
        self._connected = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._lost = asyncio.Event()
        self._generation = 0
        self._paused = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._misc: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self.stats = ConsumerStats()
        self._client = self._make_client()

    def _make_client(self) -> BufferedClient:
        client = BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else False,
            manual_ack=self._manual_ack,
            reconnect_on_failure=False,
        )
        client.max_inflight_messages_set(self._capacity)
        if self._address.tls:
            client.tls_set(ca_certs=self._ca_file)  # verifies the chain and the host name
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    # -- socket callbacks (connect() runs in a worker thread, so hop onto the loop) --------

    def _call(self, fn: Any, *args: Any) -> None:
        assert self._loop is not None  # noqa: S101 - set in __aenter__
        if threading.get_ident() == self._loop_thread:
            fn(*args)  # paho closes the socket right after this callback returns
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: SocketLike) -> None:
        self._call(self._add_reader, sock)

    def _add_reader(self, sock: SocketLike) -> None:
        assert self._loop is not None  # noqa: S101
        if not self._paused:
            self._loop.add_reader(sock, self._read)

    def _read(self) -> None:
        # paho's loop_read handles one packet; one selector wake-up per message would cost
        # more than the message. Drain what the socket holds instead, in a bounded burst that
        # stops at the first call delivering nothing (no data left, a partial packet, or a
        # control packet), when reading pauses, or when the connection drops. Packets left
        # in the socket's user-space buffer wake no selector: they are read in a next burst.
        if self._paused:
            return
        client = self._client
        stats = self.stats
        for _ in range(_READ_BURST):
            before = stats.received
            if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or self._paused:
                return
            if stats.received == before and not self._buffered_bytes():
                return
        if self._buffered_bytes() and self._loop is not None:
            self._loop.call_soon(self._read)

    def _buffered_bytes(self) -> int:
        sock = self._client.buffered_socket
        return sock.pending() if sock is not None else 0

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: SocketLike) -> None:
        self._call(self._drop_socket, sock)

    def _drop_socket(self, sock: SocketLike) -> None:
        assert self._loop is not None  # noqa: S101
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: SocketLike) -> None:
        self._call(self._add_writer, sock)

    def _add_writer(self, sock: SocketLike) -> None:
        assert self._loop is not None  # noqa: S101
        self._loop.add_writer(sock, self._write)

    def _write(self) -> None:
        # What paho queued since the last call (a batch's acknowledgements, mostly) leaves
        # in one write rather than one per packet; what the socket does not take now stays
        # held, and this writer stays registered until it is sent.
        sock = self._client.buffered_socket
        if sock is None or self._loop is None:
            return
        try:
            with sock.corked(wait=False):
                self._client.loop_write()
        except OSError as exc:  # the connection broke: the reader hears of it from paho
            logger.debug("%s: write failed: %s", self._client_id, exc)
        if self._client.buffered_socket is not sock:
            return  # closed meanwhile (a DISCONNECT sent): its reader and writer are gone
        if not sock.held and not self._client.want_write():
            self._loop.remove_writer(sock)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: SocketLike) -> None:
        self._call(self._remove_writer, sock)

    def _remove_writer(self, sock: SocketLike) -> None:
        assert self._loop is not None  # noqa: S101
        buffered = self._client.buffered_socket
        if buffered is None or not buffered.held:  # else bytes of ours still wait for it
            self._loop.remove_writer(sock)

    # -- protocol callbacks (run on the loop, inside loop_read) --------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            logger.error("broker refused %s: %s", self._client_id, reason)
            self._lost.set()
            return
        if not self._subscriptions:
            self._subscribed.set()
        elif self._v5:
            client.subscribe(
                [
                    (s.topic, SubscribeOptions(qos=1, retainHandling=s.retain_handling))
                    for s in self._subscriptions
                ]
            )
        else:
            client.subscribe([(s.topic, 1) for s in self._subscriptions])
        self._generation += 1
        self.stats.connects += 1
        self._connected.set()
        logger.info(
            "%s connected (session present: %s), subscribed to %s",
            self._client_id,
            flags.session_present,
            ", ".join(s.topic for s in self._subscriptions),
        )

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            logger.error("%s: broker refused the subscription: %s", self._client_id, refused)
        # Only now does the broker route messages to us: "connected" means subscribed.
        self._subscribed.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.stats.disconnects += 1
        self._connected.clear()
        self._subscribed.clear()
        self._lost.set()
        if not self._closing:
            logger.warning("%s lost the broker: %s", self._client_id, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        publisher = None
        if self._v5 and msg.properties is not None:
            for key, value in getattr(msg.properties, "UserProperty", []):
                if key == "client" and isinstance(value, str):
                    publisher = value[:_CLAIM_CHARS]  # a claim only: anyone can set it
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            # Brokers check topics are UTF-8; should one not, the message must still reach
            # the validator (to be quarantined and acknowledged) rather than raise in paho.
            topic = bytes(getattr(msg, "_topic", b"")).decode("utf-8", "backslashreplace")
        self._buffer.append(
            RawMessage(
                topic,
                bytes(msg.payload),
                msg.mid,
                msg.qos,
                datetime.now(UTC),  # per message: status transitions are ordered by it
                self._generation,
                publisher,
                bool(msg.retain),
            )
        )
        self.stats.received += 1
        self._bytes += len(msg.payload)
        self._ready.set()
        full = len(self._buffer) >= self._capacity or self._bytes >= self._max_bytes
        if full and not self._paused:
            # The broker overran the window (or speaks MQTT 3.1.1): stop reading so the
            # backlog stays in the broker, and resume once the writer catches up.
            self._pause()

    def _pause(self) -> None:
        sock = self._client.socket()
        if sock is not None and self._loop is not None:
            self._loop.remove_reader(sock)
        self._paused = True
        self.stats.paused += 1

    def _resume(self) -> None:
        self._paused = False
        sock = self._client.socket()
        if sock is not None and self._loop is not None:
            self._loop.add_reader(sock, self._read)
            if self._buffered_bytes():
                self._loop.call_soon(self._read)

    # -- connection management -------------------------------------------------------------

    async def _connect_once(self) -> None:
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._session_expiry_s
            properties.ReceiveMaximum = self._capacity
        self._lost.clear()
        if self._username is not None:
            self._client.username_pw_set(self._username, self._password())
        await asyncio.to_thread(
            self._client.connect,
            self._address.host,
            self._address.port,
            self._keepalive_s,
            clean_start=False if self._v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )

    async def _supervise(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                await self._connect_once()
                async with asyncio.timeout(30):
                    connected = asyncio.create_task(self._connected.wait())
                    lost = asyncio.create_task(self._lost.wait())
                    await asyncio.wait({connected, lost}, return_when=asyncio.FIRST_COMPLETED)
                    for task in (connected, lost):
                        task.cancel()
                if self._connected.is_set():
                    attempt = 0
                    await self._lost.wait()
                    continue
            except (OSError, TimeoutError) as exc:
                logger.warning("%s cannot reach the broker: %s", self._client_id, exc)
            self.stats.connect_failures += 1
            attempt += 1
            with contextlib.suppress(Exception):
                self._client.disconnect()
            await asyncio.sleep(backoff_delay(attempt, cap_s=self._backoff_max_s))

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(_MISC_INTERVAL_S)
            if self._connected.is_set():
                self._client.loop_misc()

    async def wait_connected(self, timeout_s: float = 30.0) -> None:
        """Wait until the broker has confirmed the subscriptions (SUBACK)."""
        async with asyncio.timeout(timeout_s):
            await self._subscribed.wait()

    @property
    def generation(self) -> int:
        """The number of the current connection (increments on every reconnect)."""
        return self._generation

    @property
    def buffered(self) -> int:
        """Messages received and not yet taken by :meth:`get`."""
        return len(self._buffer)

    async def get(self) -> RawMessage:
        """The next message, in arrival order."""
        while not self._buffer:
            self._ready.clear()
            await self._ready.wait()
        message = self._buffer.popleft()
        self._bytes -= len(message.payload)
        self._maybe_resume()
        return message

    def _maybe_resume(self) -> None:
        if (
            self._paused
            and len(self._buffer) <= self._capacity // 2
            and self._bytes <= self._max_bytes // 2
        ):
            self._resume()

    async def get_many(self, limit: int) -> list[RawMessage]:
        """The next messages in arrival order: at least one, at most ``limit``."""
        while not self._buffer:
            self._ready.clear()
            await self._ready.wait()
        buffer = self._buffer
        if len(buffer) <= limit:
            taken = list(buffer)
            buffer.clear()
        else:
            taken = [buffer.popleft() for _ in range(limit)]
        self._bytes -= sum(len(m.payload) for m in taken)
        self._maybe_resume()
        return taken

    async def __aiter__(self) -> AsyncIterator[RawMessage]:
        """Iterate over messages forever."""
        while True:
            yield await self.get()

    def ack(self, message: RawMessage) -> bool:
        """Acknowledge a message after its effects are committed.

        Returns:
            False when the message came over an earlier connection (the broker will
            redeliver it; the writer will count it as a duplicate).
        """
        if not self._manual_ack or message.qos == 0:
            return True
        if message.generation != self._generation or not self._connected.is_set():
            self.stats.acks_skipped_stale += 1
            return False
        self._client.ack(message.mid, message.qos)
        self.stats.acked += 1
        return True

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._task = asyncio.create_task(self._supervise(), name=f"mqtt-{self._client_id}")
        self._misc = asyncio.create_task(self._misc_loop(), name=f"mqtt-misc-{self._client_id}")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        for task in (self._task, self._misc):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._connected.is_set():
            # A clean DISCONNECT keeps the session (expiry > 0): unacked messages wait.
            self._client.disconnect()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._lost.wait()
        sock = self._client.socket()
        if sock is not None and self._loop is not None:
            self._drop_socket(sock)
