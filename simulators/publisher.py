"""The publisher: plays a message stream through one device per station, in simulated time.

Each device logs in as its station (its broker user is the station id, its password in the
settings' ``credentials_dir``), so the broker lets it publish its own station's topics only;
the ground-truth channel logs in as ``truth_user``.

It pulls the time-ordered stream from the pure generator (in a worker thread, in batches),
sleeps until each item is due on the :class:`~simulators.clock.Clock`, and hands it to the
station's :class:`~simulators.device.Device`. Ground-truth items go to the truth file and
to their own client on the truth topic.

- Live (finite ``speed``): the clock paces the stream; a device that cannot keep up (broker
  down) drops its oldest telemetry beyond its outbox, counted in ``dropped``.
- Backfill (``speed = inf``): no sleeping; handing over waits for room in the outbox, so the
  rate is what the broker acknowledges with ``window`` messages in flight per device, and
  nothing is lost.

Progress (simulated time reached, messages sent, rate) is logged every
``progress_interval_s`` real seconds; at each report and at the end the *mark* (every item
before it acknowledged, :meth:`Publisher.mark`) is handed to ``checkpoint``, so a later run
can resume there (:mod:`simulators.resume`).
"""

import asyncio
import contextlib
import itertools
import logging
import math
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from contract import DEFAULT_ROOT, Station
from simulators.clock import Clock
from simulators.device import Device
from simulators.errors import SimulatorError
from simulators.generator import WILL_PAYLOAD, status_topic
from simulators.settings import Login, SimulatorSettings
from simulators.stream import Outgoing, OutgoingKind
from simulators.truth import TruthFile
from stream.backoff import Backoff

__all__ = ["PublishStats", "Publisher", "client_identifier"]

logger = logging.getLogger(__name__)

_BATCH = 256
_CONNECT_WAIT_S = 10.0
_CLOSE_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class PublishStats:
    """What a run did."""

    handed_over: int
    acked: int
    dropped: int
    refused: int
    retries: int
    crashes: int
    truth_records: int
    sim_end: datetime | None
    elapsed_s: float

    @property
    def rate_per_s(self) -> float:
        """Acknowledged messages per real second."""
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0


def client_identifier(prefix: str, name: str, root: str) -> str:
    """The client id of a station (stable, and distinct per topic root)."""
    if root == DEFAULT_ROOT:
        return f"{prefix}-{name}"
    return f"{prefix}-{zlib.crc32(root.encode()):08x}-{name}"


def _take(stream: Iterator[Outgoing], n: int) -> list[Outgoing]:
    return list(itertools.islice(stream, n))


class Publisher:
    """Plays a stream over MQTT, one client per station plus one for ground truth.

    Args:
        settings: broker, topic root, outbox and reconnect settings.
        fleet: the stations that appear in the stream.
        clock: simulated time.
        truth_file: where truth records are also written (optional).
        window: messages in flight per device (default: 1 live, 16 in backfill).
        checkpoint: called with :meth:`mark` at each progress report and at the end.
    """

    def __init__(
        self,
        settings: SimulatorSettings,
        fleet: Sequence[Station],
        clock: Clock,
        *,
        truth_file: TruthFile | None = None,
        window: int | None = None,
        checkpoint: Callable[[datetime], None] | None = None,
    ) -> None:
        self.settings = settings
        self.checkpoint = checkpoint
        self.clock = clock
        self.truth_file = truth_file
        self.is_backfill = math.isinf(settings.speed)
        self.window = window or (16 if self.is_backfill else 1)
        self._sim_now: datetime | None = None
        root = settings.topic_root
        self.devices: dict[str, Device] = {
            s.station_id: self._device(
                client_identifier(settings.client_id_prefix, s.station_id, root),
                status_topic(s, root),
                settings.login(s.station_id),
            )
            for s in fleet
        }
        self.truth = self._device(
            client_identifier(settings.client_id_prefix, "truth", root),
            None,
            settings.login(settings.truth_user),
        )
        self._handed = 0
        self._truth_count = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop playing the stream (e.g. on SIGTERM); devices then go offline cleanly."""
        self._stopping.set()

    def _device(self, identifier: str, status: str | None, login: Login | None) -> Device:
        s = self.settings
        return Device(
            identifier,
            s.broker,
            status_topic=status,
            will_payload=WILL_PAYLOAD,
            protocol=s.mqtt_protocol,
            outbox_size=s.outbox_size,
            window=self.window,
            ack_timeout_s=s.ack_timeout_s,
            backoff=Backoff(s.reconnect_initial_s, s.reconnect_max_s, s.reconnect_give_up_s),
            now=self.sim_now,
            login=login,
            ca_file=str(s.mqtt_ca_file) if s.mqtt_ca_file else None,
        )

    def mark(self) -> datetime | None:
        """Every item before this simulated time is acknowledged (None: nothing handed over).

        The oldest item still queued or in flight on any device, else the last one handed
        over (items at that very time may still come: the stream goes on from it).
        """
        devices = [*self.devices.values(), self.truth]
        pending = [t for t in (d.pending_since() for d in devices) if t is not None]
        if self._sim_now is None:
            return min(pending, default=None)
        return min([*pending, self._sim_now])

    def sim_now(self) -> datetime:
        """Simulated time: the clock's, or in backfill the last item handed over."""
        if self.is_backfill and self._sim_now is not None:
            return self._sim_now
        return self.clock.now()

    async def run(self, stream: Iterator[Outgoing]) -> PublishStats:
        """Publish the whole stream; return when everything is acknowledged.

        Raises:
            SimulatorError: when the stream names a station without a device.
            DeviceGaveUpError: when a device's reconnect policy gives up.
        """
        started = time.monotonic()
        devices = [*self.devices.values(), self.truth]
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(d.run(), name=f"device:{d.identifier}") for d in devices]
            await self._await_connections(devices)
            await self._play(stream)
            for device in devices:
                device.close()
            _, pending = await asyncio.wait(tasks, timeout=_CLOSE_WAIT_S)
            for task in pending:  # still unable to reach the broker: give up on the rest
                logger.warning("%s did not finish in %.0f s", task.get_name(), _CLOSE_WAIT_S)
                task.cancel()
        self._checkpoint()
        return self._stats(time.monotonic() - started)

    def _checkpoint(self) -> None:
        mark = self.mark()
        if self.checkpoint is not None and mark is not None:
            self.checkpoint(mark)

    async def _await_connections(self, devices: Sequence[Device]) -> None:
        try:
            async with asyncio.timeout(_CONNECT_WAIT_S):
                await asyncio.gather(*(d.connected.wait() for d in devices))
            logger.info(
                "%d devices connected to %s:%d",
                len(devices),
                self.settings.broker.host,
                self.settings.broker.port,
            )
        except TimeoutError:
            missing = sum(not d.connected.is_set() for d in devices)
            logger.warning(
                "%d of %d devices not connected yet; they keep retrying", missing, len(devices)
            )

    async def _play(self, stream: Iterator[Outgoing]) -> None:
        next_report = time.monotonic() + self.settings.progress_interval_s
        started = time.monotonic()
        while not self._stopping.is_set() and (
            batch := await asyncio.to_thread(_take, stream, _BATCH)
        ):
            for item in batch:
                if not self.is_backfill and not await self._wait_due(item.sim_time):
                    break
                await self._hand_over(item)
                if time.monotonic() >= next_report:
                    self._report(time.monotonic() - started)
                    self._checkpoint()
                    next_report = time.monotonic() + self.settings.progress_interval_s
        self._report(time.monotonic() - started)

    async def _wait_due(self, moment: datetime) -> bool:
        """Sleep until ``moment`` is due; False when stopped meanwhile."""
        delay = self.clock.delay_until(moment)
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
        return not self._stopping.is_set()

    async def _hand_over(self, item: Outgoing) -> None:
        self._sim_now = item.sim_time
        if item.kind is OutgoingKind.TRUTH:
            if self.truth_file is not None and item.truth is not None:
                self.truth_file.write(item.truth)
            self._truth_count += 1
            await self.truth.outbox.put(item)  # labels are never dropped
            return
        device = self.devices.get(item.station_id)
        if device is None:
            msg = f"the stream names station {item.station_id!r}, which has no device"
            raise SimulatorError(msg)
        self._handed += 1
        if self.is_backfill or item.kind is not OutgoingKind.TELEMETRY:
            await device.outbox.put(item)
        else:
            device.outbox.put_nowait(item)

    def _report(self, elapsed_s: float) -> None:
        stats = self._stats(elapsed_s)
        logger.info(
            "simulated time %s: %d messages handed over, %d acknowledged (%.0f/s), "
            "%d dropped, %d refused by the broker, %d reconnect attempts, %d truth records",
            self._sim_now.isoformat() if self._sim_now else "-",
            stats.handed_over,
            stats.acked,
            stats.rate_per_s,
            stats.dropped,
            stats.refused,
            stats.retries,
            stats.truth_records,
        )

    def _stats(self, elapsed_s: float) -> PublishStats:
        devices = [*self.devices.values(), self.truth]
        return PublishStats(
            self._handed,
            sum(d.stats.acked for d in devices),
            sum(d.outbox.dropped for d in devices),
            sum(d.stats.refused for d in devices),
            sum(d.stats.retries for d in devices),
            sum(d.stats.crashes for d in devices),
            self._truth_count,
            self._sim_now,
            elapsed_s,
        )
