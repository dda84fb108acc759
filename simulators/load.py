"""Load mode: N virtual stations at a target message rate, for benchmarks.

Two message shapes:

- ``station``: one JSON telemetry message per station sample, 8 readings (an air station);
- ``senml``: gateway SenML packs (RFC 8428) of ~100 readings from ~13 stations each.

The virtual stations are registered to ``gateways`` load gateways (``ld-gw-001`` …, the
stations' ``gateway`` attribute), and the load is published the way a gateway publishes:
logged in as the gateway, on its stations' own topics (``station``) or in packs on its own
topic (``senml``), so the broker's ACL and ingest's station checks apply to it as to the
real fleet. Each worker process runs one paho client per gateway it serves (QoS 1, in-flight
window ``window``, at most ``max_pending`` unacknowledged messages; on the buffered socket of
:mod:`stream.mqtt_socket`, a tick's messages leaving in one write) and paces itself to its
share of the rate; when one process cannot reach the rate the gateways are spread over
several (``processes``, or ``0`` = as many as the rate needs, up to the CPU count and the
number of gateways). The report says what was actually sent and acknowledged, never just
what was asked for.
"""

import contextlib
import logging
import math
import multiprocessing
import os
import select
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract import (
    BrokerAddress,
    Domain,
    Quantity,
    Station,
    StationId,
    Topic,
    encode_senml,
    encode_telemetry,
)
from simulators.fleet import AIR_QUANTITIES
from stream.mqtt_socket import BufferedClient, BufferedSocket

__all__ = [
    "LOAD_GATEWAYS",
    "LoadPlan",
    "LoadReport",
    "Shape",
    "WorkerReport",
    "load_fleet",
    "load_gateway",
    "run_load",
]

logger = logging.getLogger(__name__)

Shape = Literal["station", "senml"]
LOAD_GATEWAYS = 8
"""Gateways the load stations are registered to (and the most worker processes)."""
_READINGS_PER_STATION = len(AIR_QUANTITIES)
# One process publishes ~13k station messages/s (QoS 1) flat out (53-75 µs of CPU a message
# at 6,250/s, on the buffered socket: docs/performance.md); SenML packs cost more to encode.
_PER_PROCESS_MSGS_S = {"station": 10000.0, "senml": 1500.0}
_TICK_S = 0.005
"""Publishing tick: messages due are sent together, then the worker sleeps until the next."""
_TYPICAL = {
    Quantity.PM25: 40.0,
    Quantity.PM10: 60.0,
    Quantity.NO2: 30.0,
    Quantity.SO2: 12.0,
    Quantity.CO: 900.0,
    Quantity.O3: 40.0,
    Quantity.AIR_TEMPERATURE: 26.0,
    Quantity.RELATIVE_HUMIDITY: 75.0,
}


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What to send.

    Args:
        broker: where to send it.
        stations: number of virtual stations (``ld-00001`` ...).
        rate_msgs_s: target messages per second, all processes together.
        duration_s: how long to send.
        shape: ``station`` (8 readings per message) or ``senml`` (~100 per pack).
        processes: worker processes (0 = as many as the rate needs).
        root: topic root.
        readings_per_pack: readings in a SenML pack.
        window: MQTT in-flight window per client.
        max_pending: most unacknowledged messages per client before waiting.
        protocol: MQTT protocol version (3.1.1 by default: paho decodes its acks faster).
        client_prefix: client id prefix.
        gateways: load gateways the stations are registered to (as :func:`load_fleet`).
        credentials_dir: the gateways' passwords (``<gateway>/password``, a credential
            store's ``secrets/``); None: the URL's credentials.
    """

    broker: BrokerAddress
    stations: int = 1000
    rate_msgs_s: float = 1000.0
    duration_s: float = 30.0
    shape: Shape = "station"
    processes: int = 0
    root: str = "hanoi/v1"
    readings_per_pack: int = 100
    window: int = 100
    max_pending: int = 2000
    protocol: Literal["5", "3.1.1"] = "3.1.1"
    client_prefix: str = "load"
    gateways: int = LOAD_GATEWAYS
    credentials_dir: Path | None = None

    def worker_count(self) -> int:
        """Processes to use (a gateway is served by one process)."""
        if self.processes > 0:
            return min(self.processes, self.gateways)
        needed = math.ceil(self.rate_msgs_s / _PER_PROCESS_MSGS_S[self.shape])
        return max(1, min(needed, os.cpu_count() or 1, self.gateways))


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """One worker's counts."""

    worker: int
    sent: int
    acked: int
    readings: int
    elapsed_s: float
    bytes_sent: int
    cpu_s: float = 0.0
    """CPU the worker's process used from its first publish to its last acknowledgement
    (its start-up and connections are not in it)."""


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a load run actually achieved."""

    shape: Shape
    stations: int
    processes: int
    target_msgs_s: float
    sent: int
    acked: int
    readings: int
    elapsed_s: float
    bytes_sent: int
    workers: tuple[WorkerReport, ...]

    @property
    def achieved_msgs_s(self) -> float:
        """Acknowledged messages per second."""
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def cpu_s(self) -> float:
        """CPU the workers used while publishing (start-up and connections not counted)."""
        return sum(w.cpu_s for w in self.workers)

    @property
    def achieved_readings_s(self) -> float:
        """Acknowledged readings per second."""
        return self.readings * (self.acked / self.sent) / self.elapsed_s if self.sent else 0.0

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        out = asdict(self)
        out["achieved_msgs_s"] = round(self.achieved_msgs_s, 1)
        out["achieved_readings_s"] = round(self.achieved_readings_s, 1)
        out["publishing_cpu_s"] = round(self.cpu_s, 2)
        return out


def load_gateway(index: int) -> str:
    """The id of load gateway ``index`` (0-based)."""
    return f"ld-gw-{index + 1:03d}"


def load_fleet(n: int, gateways: int = LOAD_GATEWAYS) -> list[Station]:
    """The virtual stations of load mode (air stations spread over Hanoi's centre).

    Station ``i`` is registered to gateway ``i mod gateways``.
    """
    from simulators.fleet import _sensors

    rng = np.random.default_rng(0)
    lats = rng.uniform(20.95, 21.08, n)
    lons = rng.uniform(105.75, 105.90, n)
    return [
        Station(
            StationId(f"ld-{i + 1:05d}"),
            Domain.AIR,
            f"Load station {i + 1}",
            "Hà Nội",
            round(float(lats[i]), 5),
            round(float(lons[i]), 5),
            "air_quality",
            _sensors(AIR_QUANTITIES, 60.0),
            {"virtual": True, "gateway": load_gateway(i % gateways)},
        )
        for i in range(n)
    ]


class _Values:
    """Air values for a stream of messages, drawn a block at a time (one numpy call per block).

    Each reading is its quantity's typical value times Gaussian noise (10 %, cut at ±30 % so
    that humidity stays below 100 %), one decimal.
    """

    _BLOCK = 1024

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._typical = np.array([_TYPICAL[q] for q in AIR_QUANTITIES])
        self._rows: list[list[float]] = []

    def next(self) -> list[tuple[Quantity, float]]:
        """The values of one station sample."""
        if not self._rows:
            noise = self._rng.normal(1.0, 0.1, (self._BLOCK, len(AIR_QUANTITIES))).clip(0.7, 1.3)
            self._rows = np.round(noise * self._typical, 1).tolist()
        return list(zip(AIR_QUANTITIES, self._rows.pop(), strict=True))


class _Sender:
    """One paho client publishing for one gateway."""

    def __init__(self, plan: LoadPlan, gateway: str) -> None:
        self.plan = plan
        self.gateway = gateway
        self._unacked: deque[mqtt.MQTTMessageInfo] = deque()
        self._acked = 0
        version = mqtt.MQTTv5 if plan.protocol == "5" else mqtt.MQTTv311
        self.client = BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=f"{plan.client_prefix}-{os.getpid()}-{gateway}",
            protocol=version,
        )
        self.client.max_inflight_messages_set(plan.window)
        self.client.max_queued_messages_set(0)
        if plan.credentials_dir is not None:
            secret = plan.credentials_dir / gateway / "password"
            password = secret.read_text(encoding="utf-8").strip()
            self.client.username_pw_set(gateway, password)
        elif plan.broker.username:
            self.client.username_pw_set(plan.broker.username, plan.broker.password)
        if plan.broker.tls:
            self.client.tls_set()

    @property
    def acked(self) -> int:
        """Messages acknowledged so far (no on_publish callback: it is costly in paho 2)."""
        while self._unacked and self._unacked[0].is_published():
            self._unacked.popleft()
            self._acked += 1
        return self._acked

    @property
    def pending(self) -> int:
        """Messages sent and not acknowledged yet."""
        return len(self._unacked)

    def publish(self, topic: str, payload: bytes) -> None:
        self._unacked.append(self.client.publish(topic, payload, qos=1))

    @property
    def sock(self) -> BufferedSocket:
        """The connection's socket (connected senders only)."""
        sock = self.client.buffered_socket
        if sock is None:
            msg = f"load gateway {self.gateway}: lost the broker"
            raise ConnectionError(msg)
        return sock

    def pump(self) -> None:
        """Read the acknowledgements the broker sent, without waiting."""
        try:
            self.client.pump()
        except ConnectionError as exc:
            msg = f"load gateway {self.gateway}: {exc}"
            raise ConnectionError(msg) from None

    def wait(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the broker to say something, then read it."""
        try:
            self.client.wait(timeout_s)
        except ConnectionError as exc:
            msg = f"load gateway {self.gateway}: {exc}"
            raise ConnectionError(msg) from None

    def connect(self) -> None:
        self.client.connect(self.plan.broker.host, self.plan.broker.port, keepalive=30)
        deadline = time.monotonic() + 10.0
        while not self.client.is_connected():
            try:
                self.wait(0.05)
            except ConnectionError:
                msg = f"load gateway {self.gateway}: the broker refused the connection"
                raise ConnectionError(msg) from None
            if time.monotonic() > deadline:
                msg = f"load gateway {self.gateway}: no CONNACK from the broker"
                raise ConnectionError(msg)

    def wait_acks(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            self.wait(0.05)
            _ = self.acked

    def disconnect(self) -> None:
        self.client.disconnect()


def _messages(plan: LoadPlan, gateway: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """Endless (topic, payload, readings) for one gateway's stations."""
    step = plan.gateways
    mine = [f"ld-{i + 1:05d}" for i in range(gateway, plan.stations, step)] or ["ld-00001"]
    seq = 0
    values = _Values(rng)
    if plan.shape == "station":
        topics = [str(Topic(Domain.AIR, StationId(s), "telemetry", plan.root)) for s in mine]
        while True:
            for station, topic in zip(mine, topics, strict=True):
                seq += 1
                payload = encode_telemetry(station, datetime.now(UTC), values.next(), seq=seq)
                yield topic, payload, _READINGS_PER_STATION
    per_pack = math.ceil(plan.readings_per_pack / _READINGS_PER_STATION)
    topic = str(Topic(Domain.AIR, StationId(load_gateway(gateway)), "telemetry", plan.root))
    position = 0
    while True:
        now = datetime.now(UTC)
        group = [mine[(position + k) % len(mine)] for k in range(min(per_pack, len(mine)))]
        position += per_pack
        readings = [(s, q, v, now) for s in group for q, v in values.next()]
        yield topic, encode_senml(readings), len(readings)


def _worker(plan: LoadPlan, worker: int, workers: int) -> WorkerReport:
    """Publish this worker's share of the rate, in ticks of ``_TICK_S``.

    Each tick publishes every message due by then (round robin over the gateways), reads
    the acknowledgements, and sleeps in ``select`` until the next tick — pacing message by
    message would spend more CPU on waiting than on publishing.
    """
    rng = np.random.default_rng(worker)
    served = [g for g in range(plan.gateways) if g % workers == worker]
    senders = [_Sender(plan, load_gateway(g)) for g in served]
    for sender in senders:
        sender.connect()
    streams = [_messages(plan, g, rng) for g in served]
    rate = plan.rate_msgs_s / workers
    sent = readings = size = 0
    cpu0 = time.process_time()
    started = time.monotonic()
    end = started + plan.duration_s
    while (now := time.monotonic()) < end:
        due = min(int((now - started) * rate) + 1, int(plan.duration_s * rate))
        with contextlib.ExitStack() as corks:  # a tick's messages leave in one write each
            for sender in senders:
                corks.enter_context(sender.sock.corked())
            while sent < due:
                turn = sent % len(senders)
                sender = senders[turn]
                if sender.pending >= plan.max_pending:  # the broker is behind: wait for acks
                    break
                topic, payload, count = next(streams[turn])
                sender.publish(topic, payload)
                sent, readings, size = sent + 1, readings + count, size + len(payload)
        for sender in senders:
            sender.pump()
            _ = sender.acked
        pause = min(_TICK_S, end - time.monotonic())
        if pause > 0:
            _wait_readable(senders, pause)
    elapsed = time.monotonic() - started
    for sender in senders:
        sender.wait_acks(10.0)
    cpu_s = time.process_time() - cpu0
    for sender in senders:
        sender.disconnect()
    acked = sum(sender.acked for sender in senders)
    return WorkerReport(worker, sent, acked, readings, elapsed, size, cpu_s)


def _wait_readable(senders: Sequence[_Sender], timeout_s: float) -> None:
    """Sleep up to ``timeout_s``, waking early when a broker has something to say."""
    socks = [s.sock for s in senders]
    if any(sock.pending() for sock in socks):
        return
    select.select(socks, [], [], timeout_s)


def run_load(plan: LoadPlan) -> LoadReport:
    """Run the load and report what was achieved (blocks for ``duration_s`` and a bit)."""
    workers = plan.worker_count()
    logger.info(
        "load: %d %s stations, target %.0f msgs/s for %.0f s over %d process(es)",
        plan.stations,
        plan.shape,
        plan.rate_msgs_s,
        plan.duration_s,
        workers,
    )
    if workers == 1:
        reports: Sequence[WorkerReport] = [_worker(plan, 0, 1)]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(_worker, plan, i, workers) for i in range(workers)]
            reports = [f.result() for f in futures]
    report = LoadReport(
        plan.shape,
        plan.stations,
        workers,
        plan.rate_msgs_s,
        sum(r.sent for r in reports),
        sum(r.acked for r in reports),
        sum(r.readings for r in reports),
        max(r.elapsed_s for r in reports),
        sum(r.bytes_sent for r in reports),
        tuple(reports),
    )
    logger.info(
        "load: sent %d, acknowledged %d (%.0f msgs/s, %.0f readings/s, target %.0f msgs/s)",
        report.sent,
        report.acked,
        report.achieved_msgs_s,
        report.achieved_readings_s,
        plan.rate_msgs_s,
    )
    return report
