"""The consumer and pipeline on a real broker: bounds that pause reading, ordered acks."""

import asyncio

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract import Registry
from stream.batcher import Batch, Batcher
from stream.consumer import Consumer, RawMessage
from stream.pipeline import Pipeline
from stream.validate import Validator
from tests.fixtures.mqtt import Broker

pytestmark = [pytest.mark.mqtt, pytest.mark.anyio]


def _publish(broker: Broker, topic: str, payloads: list[bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(*broker.login("pub"))
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for info in [client.publish(topic, p, qos=1) for p in payloads]:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("bound", ["messages", "bytes"])
async def test_a_full_buffer_pauses_reading_and_nothing_is_lost(
    mqtt_broker: Broker, topic_root: str, bound: str
) -> None:
    topic = f"{topic_root}/air/aq-bound/telemetry"
    payloads = [f"{i:06d}".encode() * 700 for i in range(300)]  # 4.2 kB each
    limits = {"receive_maximum": 40} if bound == "messages" else {"buffer_max_bytes": 40_000}
    consumer = Consumer(
        mqtt_broker.url_as(name := f"bound-{topic_root.split('/')[0]}-{bound}"),
        client_id=f"hanoi-tester-{name}",
        subscriptions=[f"{topic_root}/+/+/telemetry"], **limits,  # type: ignore[arg-type]
    )  # fmt: skip
    got: list[bytes] = []
    high_water = 0
    async with consumer:
        await consumer.wait_connected()
        await asyncio.to_thread(_publish, mqtt_broker, topic, payloads)
        async with asyncio.timeout(30):
            while len(got) < len(payloads):
                await asyncio.sleep(0.01)  # a slow writer: the buffer fills meanwhile
                high_water = max(high_water, consumer.buffered)
                for message in await consumer.get_many(15):
                    got.append(message.payload)
                    assert consumer.ack(message)
    assert got == payloads  # all of them, once, in order
    assert consumer.stats.paused >= 1
    limit = 40 if bound == "messages" else 40_000 // 4200 + 1
    assert high_water <= limit + 1


class _RecordingConsumer(Consumer):
    """The real consumer, noting the order of its acknowledgements."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.acked_payloads: list[bytes] = []

    def ack(self, message: RawMessage) -> bool:
        self.acked_payloads.append(message.payload)
        return super().ack(message)


async def test_concurrent_writes_commit_out_of_order_but_ack_in_arrival_order(
    mqtt_broker: Broker, topic_root: str
) -> None:
    topic = f"{topic_root}/air/aq-order/telemetry"
    payloads = [f"m{i:04d}".encode() for i in range(120)]
    consumer = _RecordingConsumer(
        mqtt_broker.url_as(name := f"order-{topic_root.split('/')[0]}"),
        client_id=f"hanoi-tester-{name}",
        subscriptions=[f"{topic_root}/+/+/telemetry"],
    )  # fmt: skip
    committed: list[int] = []
    started = 0

    async def write(batch: Batch) -> None:  # every other batch is slow to commit
        nonlocal started
        number, started = started, started + 1
        await asyncio.sleep(0.15 if number % 2 == 0 else 0.01)
        committed.append(number)

    pipeline = Pipeline(
        consumer,
        Validator(Registry({}), root=topic_root),
        Batcher(max_readings=10**6, max_messages=10, max_age_s=0.05),
        write,
        concurrency=3,
    )
    async with consumer:
        await consumer.wait_connected()
        runner = asyncio.create_task(pipeline.run())
        await asyncio.to_thread(_publish, mqtt_broker, topic, payloads)
        async with asyncio.timeout(30):
            while len(consumer.acked_payloads) < len(payloads):
                await asyncio.sleep(0.02)
        pipeline.stop()
        await runner
    assert committed != sorted(committed)  # the writes really overlapped
    assert consumer.acked_payloads == payloads  # yet every ack in arrival order, once
    assert consumer.stats.acked == len(payloads)


async def test_a_flood_of_user_properties_does_not_hold_the_consumer(
    mqtt_broker: Broker, topic_root: str
) -> None:
    # Any publisher may attach user properties and the broker forwards them: 80,000 of them
    # (400 kB) hold paho's own unpacking, quadratic in their number, for ~15 s here — the
    # consumer's whole event loop with it, and again after every reconnect (redelivered).
    topic = f"{topic_root}/air/aq-props/telemetry"
    consumer = Consumer(
        mqtt_broker.url_as(name := f"props-{topic_root.split('/')[0]}"),
        client_id=f"hanoi-tester-{name}",
        subscriptions=[f"{topic_root}/+/+/telemetry"],
    )
    flood = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    flood.UserProperty = [("", "")] * 80_000
    flood.UserProperty = ("client", "gw-01")

    def publish_flood() -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.username_pw_set(*mqtt_broker.login("pub"))
        client.connect(mqtt_broker.host, mqtt_broker.port)
        client.loop_start()
        try:
            client.publish(topic, b"flood", qos=1, properties=flood).wait_for_publish(10)
            client.publish(topic, b"next", qos=1).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()

    async with consumer:
        await consumer.wait_connected()
        got: list[RawMessage] = []
        async with asyncio.timeout(8):  # a blocked loop raises here once it is free again
            await asyncio.to_thread(publish_flood)
            while len(got) < 2:
                got.extend(await consumer.get_many(10))
    assert [m.payload for m in got] == [b"flood", b"next"]
    assert got[0].publisher == "gw-01"  # its claim still read
