"""CPU per message of the ingest hot path, stage by stage, against plain paho in the same run.

Run: ``.venv/bin/python benchmarks/bench_consumer.py [--messages 40000] [--shape station]``

Wall-clock rates on a shared 2-core machine swing with whatever else runs; CPU time per
message of one process does not (much). This benchmark therefore preloads a private Mosquitto
(the project's configuration) with QoS 1 messages queued for a persistent session while the
consumer is away, then drains them and reports the consumer process's CPU µs per message:

1. **baseline**: a bare paho-mqtt 2.x subscriber (``loop()`` in a loop, acknowledging on
   receipt) — the cheapest way paho can take QoS 1 messages off a socket;
2. **consumer**: :class:`stream.consumer.Consumer` (manual acks, asyncio) taking every message
   and acknowledging it;
3. **consumer + validate**: the same, with :meth:`stream.validate.Validator.check` on every
   message (decode, registry, time window), as the ingestor does before writing.

Ratios are against the baseline. Shapes as in ``bench_ingest.py``: ``station`` (8 readings
per message, JSON) and ``gateway`` (SenML packs of 96 readings).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import ROOT, STATIONS, readings_per_message, station_id, templates

from contract import Domain, Quantity, Registry, Sensor, Station, StationId
from hanoi_ioc.embedded import EmbeddedBroker
from stream.consumer import Consumer
from stream.validate import Validator

QUANTITIES = (
    Quantity.PM25, Quantity.PM10, Quantity.NO2, Quantity.SO2, Quantity.CO, Quantity.O3,
    Quantity.AIR_TEMPERATURE, Quantity.RELATIVE_HUMIDITY,
)  # fmt: skip


def registry() -> Registry:
    stations = []
    keys: dict[tuple[str, Quantity], int] = {}
    for i in range(STATIONS):
        sid = StationId(station_id(i))
        sensors = tuple(Sensor(q, 60.0) for q in QUANTITIES)
        stations.append(Station(sid, Domain.AIR, sid, "Bench", 21.0, 105.8, "air", sensors))
        for q in QUANTITIES:
            keys[(sid, q)] = len(keys) + 1
    return Registry.of(stations, keys)


LOGINS: dict[str, str] = {}
"""Broker user -> password (the bench broker authenticates as production's does)."""


def _client(client_id: str) -> mqtt.Client:
    """A paho MQTT 5 client logged in as ``client_id`` (client id = user name)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(client_id, LOGINS[client_id])
    return client


def _session(port: int, client_id: str) -> None:
    """Create the persistent session (subscribed, then away) the messages queue for."""
    client = _client(client_id)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.subscribe(f"{ROOT}/+/+/telemetry", qos=1)
    for _ in range(100):
        client.loop(0.02)
    client.disconnect()
    client.loop(0.05)


def preload(port: int, client_id: str, shape: str, count: int) -> None:
    """Queue ``count`` QoS 1 messages for the (absent) session ``client_id``."""
    _session(port, client_id)
    pub = _client("hanoi-tester-preload")
    pub.max_inflight_messages_set(1000)
    acked = [0]
    pub.on_publish = lambda c, u, mid, rc, p: acked.__setitem__(0, acked[0] + 1)
    pub.connect("127.0.0.1", port)
    sources = templates(shape)
    base = int(time.time() * 1e6)
    for n in range(count):
        topic, head, tail = sources[n % len(sources)]
        us = base + n
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1_000_000))
            + f".{us % 1_000_000:06d}Z"
            if shape == "station"
            else f"{us / 1e6:.6f}"
        )
        pub.publish(topic, head + stamp.encode() + tail, qos=1)
        while n - acked[0] > 900:
            pub.loop(0.001)
    while acked[0] < count:
        pub.loop(0.01)
    pub.disconnect()


def baseline(port: int, client_id: str, count: int) -> float:
    """CPU seconds for a bare paho subscriber to take ``count`` queued messages."""
    got = [0]
    client = _client(client_id)
    client.max_inflight_messages_set(4000)
    client.on_message = lambda c, u, m: got.__setitem__(0, got[0] + 1)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 4000
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    started = time.process_time()
    deadline = time.monotonic() + 300
    while got[0] < count and time.monotonic() < deadline:
        client.loop(0.05)
    used = time.process_time() - started
    client.disconnect()
    if got[0] < count:
        msg = f"baseline received {got[0]} of {count}"
        raise SystemExit(msg)
    return used


async def consume(url: str, client_id: str, count: int, validator: Validator | None) -> float:
    """CPU seconds for :class:`Consumer` (optionally + validation) to take and ack all."""
    consumer = Consumer(url, client_id=client_id, subscriptions=[f"{ROOT}/+/+/telemetry"],
                        session_expiry_s=3600, receive_maximum=4000, username=client_id,
                        password=lambda: LOGINS[client_id])  # fmt: skip
    readings = 0
    async with consumer:
        started = time.process_time()  # (a full backlog pauses reading before the SUBACK)
        taken = 0
        while taken < count:  # the way stream.pipeline.Pipeline takes them
            messages = await consumer.get_many(4000)
            taken += len(messages)
            if validator is not None:
                readings += sum(len(validator.check(m).rows) for m in messages)
            for message in messages:
                consumer.ack(message)
        used = time.process_time() - started
    if validator is not None and readings == 0:
        msg = "validation accepted nothing: registry and payloads disagree"
        raise SystemExit(msg)
    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--shape", choices=["station", "gateway"], default="station")
    args = parser.parse_args()
    count, shape = args.messages, args.shape
    per = readings_per_message(shape)
    validator = Validator(registry(), root=ROOT)
    rows = []
    stages: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-consumer-") as tmp:
        broker = EmbeddedBroker(Path(tmp) / "mqtt")
        for user in ("hanoi-tester-preload", "hanoi-tester-base", "hanoi-tester-run"):
            broker.credentials.issue(user, "tester")
            LOGINS[user] = broker.credentials.secret(user)
        with broker:
            base_id, run_id = "hanoi-tester-base", "hanoi-tester-run"
            preload(broker.port, base_id, shape, count)
            stages.append(("baseline: bare paho, ack on receipt", baseline(broker.port, base_id, count)))  # noqa: E501  # fmt: skip
            runs = (("Consumer, manual ack", None), ("Consumer + Validator.check", validator))
            for name, checker in runs:
                preload(broker.port, run_id, shape, count)
                stages.append((name, asyncio.run(consume(broker.url, run_id, count, checker))))
    base = stages[0][1]
    print(f"{count:,} {shape} messages ({per} readings each), consumer-process CPU:")
    print("| stage | µs/message | µs/reading | ratio to baseline |")
    print("|---|---|---|---|")
    for name, used in stages:
        us = used / count * 1e6
        rows.append(f"| {name} | {us:.1f} | {us / per:.2f} | {used / base:.2f} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
