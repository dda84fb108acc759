"""A simulated device: one MQTT client identity, QoS 1, last will, jittered reconnects.

Each station (and the ground-truth channel) runs as a :class:`Device`: it connects with a
fixed identifier and a retained ``offline`` last will on its status topic, publishes a
retained ``online`` status on every connect, then publishes its outbox with QoS 1, at most
``window`` messages in flight. Messages not acknowledged before a connection loss go back to
the front of the outbox and are sent again after the reconnect (at-least-once).

An ``OFFLINE`` item makes the device drop its TCP connection without a DISCONNECT, exactly
as a device losing power or network does, so the broker publishes the will; an ``ONLINE``
item brings it back.
"""

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import aiomqtt

from contract import MAX_PAYLOAD_BYTES, BrokerAddress, encode_status
from simulators.errors import DeviceGaveUpError
from simulators.outbox import Outbox
from simulators.settings import Login
from simulators.stream import Outgoing, OutgoingKind
from stream.backoff import Backoff, GaveUpError

__all__ = ["Device", "DeviceStats"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class DeviceStats:
    """Counters of one device."""

    acked: int = 0
    connects: int = 0
    retries: int = 0
    crashes: int = 0
    requeued: int = 0
    refused: int = 0
    """Messages over the broker's size limit, given up on (the oversized fault)."""


class Device:
    """One simulated device (or the truth channel when ``status_topic`` is None).

    Args:
        identifier: MQTT client id (one per station).
        broker: where to connect.
        status_topic: retained status topic, also the will topic.
        will_payload: the last-will payload.
        protocol: MQTT protocol version.
        outbox_size: outbox capacity (see :class:`~simulators.outbox.Outbox`).
        window: maximum messages in flight awaiting PUBACK.
        ack_timeout_s: how long to wait for a PUBACK before treating the link as broken.
        backoff: reconnect policy.
        now: the simulated time, for status payloads.
        login: the broker user it logs in as (default: the URL's credentials).
        ca_file: CA bundle the broker's TLS certificate must chain to (default: the
            system's); the broker's host name is always verified.
    """

    def __init__(
        self,
        identifier: str,
        broker: BrokerAddress,
        *,
        status_topic: str | None,
        will_payload: bytes,
        protocol: Literal["5", "3.1.1"] = "5",
        outbox_size: int = 1000,
        window: int = 1,
        ack_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        now: Callable[[], datetime],
        login: Login | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.identifier = identifier
        self.login = login
        self.ca_file = ca_file
        self.broker = broker
        self.status_topic = status_topic
        self.will_payload = will_payload
        self.protocol = protocol
        self.outbox = Outbox(outbox_size)
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        self.backoff = backoff or Backoff(rng=random.Random(identifier))
        self.now = now
        self.stats = DeviceStats()
        self.connected = asyncio.Event()
        self._offline = False
        self._inflight: list[Outgoing] = []

    @property
    def is_idle(self) -> bool:
        """Nothing queued and nothing awaiting an acknowledgement."""
        return not self.outbox and not self._inflight

    def pending_since(self) -> datetime | None:
        """Simulated time of the oldest item not acknowledged yet (None: all acknowledged)."""
        times = [t for t in (self.outbox.oldest(), *(i.sim_time for i in self._inflight)) if t]
        return min(times, default=None)

    def close(self) -> None:
        """Finish what is queued, publish ``offline`` (retained) and disconnect cleanly."""
        self.outbox.close()

    async def run(self) -> None:
        """Connect, publish, reconnect, until closed.

        Raises:
            DeviceGaveUpError: when the backoff policy gives up.
        """
        while True:
            if self._offline and not await self._wait_until_back():
                return
            try:
                if await self._session() == "closed":
                    return
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                try:
                    delay = self.backoff.next_delay(time.monotonic())
                except GaveUpError as gave_up:
                    msg = f"{self.identifier}: {gave_up}"
                    raise DeviceGaveUpError(msg) from exc
                self.stats.retries += 1
                logger.warning("%s: %s; reconnecting in %.1f s", self.identifier, exc, delay)
                await asyncio.sleep(delay)

    def _client(self) -> aiomqtt.Client:
        will = None
        if self.status_topic is not None:
            will = aiomqtt.Will(self.status_topic, self.will_payload, qos=1, retain=True)
        version = (
            aiomqtt.ProtocolVersion.V5 if self.protocol == "5" else aiomqtt.ProtocolVersion.V311
        )
        username, password = self.broker.username, self.broker.password
        if self.login is not None:  # read at every connection: a rotated password is used
            username, password = self.login.user, self.login.password()
        tls = None
        if self.broker.tls:
            tls = ssl.create_default_context(cafile=self.ca_file)  # verifies chain and host
        client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            identifier=self.identifier,
            username=username,
            password=password,
            protocol=version,
            will=will,
            keepalive=30,
            timeout=self.ack_timeout_s,
            max_inflight_messages=max(self.window, 20),
            tls_context=tls,
        )
        client.pending_calls_threshold = self.window + 10
        return client

    async def _session(self) -> Literal["closed", "crashed"]:
        client = self._client()
        async with client:
            self.stats.connects += 1
            self.backoff.reset()
            try:
                if self.status_topic is not None:
                    online = encode_status(True, self.now())
                    await client.publish(self.status_topic, online, qos=1, retain=True)
                self.connected.set()
                outcome = await self._watched_pump(client)
                if outcome == "closed" and self.status_topic is not None:
                    offline = encode_status(False, self.now(), reason="shutdown")
                    await client.publish(self.status_topic, offline, qos=1, retain=True)
            except aiomqtt.MqttError:
                await _reap(client)
                raise
            finally:
                self.connected.clear()
            if outcome == "crashed":
                self._crash(client)
                await _reap(client)
            return outcome

    async def _watched_pump(self, client: aiomqtt.Client) -> Literal["closed", "crashed"]:
        """Run the pump while watching the connection, so a loss is noticed even when idle."""
        try:
            async with asyncio.TaskGroup() as group:
                watcher = group.create_task(_watch(client), name=f"watch:{self.identifier}")
                outcome = await self._pump(client)
                watcher.cancel()
        except* aiomqtt.MqttError as errors:
            raise errors.exceptions[0] from None
        return outcome

    async def _pump(self, client: aiomqtt.Client) -> Literal["closed", "crashed"]:
        while True:
            items = await self.outbox.get(self.window)
            if not items:
                return "closed"
            if items[0].kind is OutgoingKind.OFFLINE:
                return "crashed"
            if items[0].kind is OutgoingKind.ONLINE:
                continue  # already online
            await self._publish(client, items)

    async def _publish(self, client: aiomqtt.Client, items: list[Outgoing]) -> None:
        self._inflight = items
        try:
            results = await asyncio.gather(
                *(client.publish(i.topic, i.payload, qos=i.qos, retain=i.retain) for i in items),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            # The connection watcher cancelled us: nothing here is known to be acknowledged
            # (but one over the broker's size limit is what dropped the connection).
            again = [i for i in items if len(i.payload) <= MAX_PAYLOAD_BYTES]
            self.stats.refused += len(items) - len(again)
            self.outbox.requeue(again)
            self.stats.requeued += len(again)
            raise
        finally:
            self._inflight = []
        failed = [
            item for item, r in zip(items, results, strict=True) if isinstance(r, BaseException)
        ]
        self.stats.acked += len(items) - len(failed)
        # The broker refuses a payload over the contract's limit, for good (and Mosquitto
        # 2.0.11 drops an MQTT 5 client's connection on it): sending it again would loop.
        refused = [item for item in failed if len(item.payload) > MAX_PAYLOAD_BYTES]
        if refused:
            self.stats.refused += len(refused)
            failed = [item for item in failed if len(item.payload) <= MAX_PAYLOAD_BYTES]
        if failed:
            self.outbox.requeue(failed)
            self.stats.requeued += len(failed)
            error = next(r for r in results if isinstance(r, BaseException))
            if not isinstance(error, Exception):
                raise error
            msg = f"publish failed: {error}"
            raise aiomqtt.MqttError(msg) from error

    def _crash(self, client: aiomqtt.Client) -> None:
        """Drop the TCP connection without DISCONNECT, so the broker sends the will."""
        self.stats.crashes += 1
        self._offline = True
        self.connected.clear()
        # aiomqtt has no public "lose the connection" call; shutting the socket down is what a
        # power cut looks like from the broker's side.
        shutdown = getattr(client._client.socket(), "shutdown", None)
        if shutdown is not None:
            with contextlib.suppress(OSError):
                shutdown(socket.SHUT_RDWR)

    async def _wait_until_back(self) -> bool:
        """While offline: wait for the ONLINE item (True) or the end of the run (False)."""
        items = await self.outbox.get(1)
        if not items:
            return False
        if items[0].kind is not OutgoingKind.ONLINE:
            self.outbox.requeue(items)  # data queued while "off": send it after reconnecting
        self._offline = False
        return True


async def _watch(client: aiomqtt.Client) -> None:
    """Return only by raising MqttError when the connection is lost (nothing is subscribed)."""
    async for _ in client.messages:
        pass
    msg = "message stream ended"
    raise aiomqtt.MqttError(msg)


async def _reap(client: aiomqtt.Client) -> None:
    """Wait briefly for aiomqtt to register a lost connection and collect its error."""
    with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
        async with asyncio.timeout(1.0):
            async for _ in client.messages:
                pass
