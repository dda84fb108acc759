"""The buffered paho socket: fewer system calls, nothing lost, nothing left unread.

The socket-level tests use a real socket pair; the client tests a real Mosquitto.
"""

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from stream.consumer import Consumer
from stream.mqtt_socket import BufferedClient, BufferedSocket
from tests.fixtures.mqtt import Broker


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


def test_small_reads_are_served_from_one_large_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    sock = BufferedSocket(ours)
    theirs.sendall(b"\x30\x05hello" * 100)
    time.sleep(0.05)
    out = b""
    while len(out) < 700:
        out += sock.recv(1) + sock.recv(1) + sock.recv(5)
        assert sock.pending() == 700 - len(out)
    assert out == b"\x30\x05hello" * 100
    assert sock.recv_calls == 1
    with pytest.raises(BlockingIOError):  # empty: the socket says so, as paho expects
        sock.recv(1)
    theirs.close()
    assert sock.recv(1) == b""  # the end of the stream


def test_a_read_larger_than_what_is_there_returns_what_is_there(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    sock = BufferedSocket(ours, read_size=4)
    theirs.sendall(b"abcdefgh")
    time.sleep(0.05)
    assert sock.recv(2) == b"ab"
    assert sock.recv(10) == b"cd"  # the rest of the buffer, never more than one read
    assert sock.recv(10) == b"efgh"
    assert sock.pending() == 0


def test_writes_go_straight_out_unless_corked(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    sock = BufferedSocket(ours)
    assert sock.send(b"one") == 3
    assert theirs.recv(10) == b"one"
    with sock.corked():
        for i in range(500):
            assert sock.send(b"%04d" % i) == 4
        theirs.settimeout(0.05)
        with pytest.raises(TimeoutError):
            theirs.recv(10)  # nothing left while corked
    theirs.settimeout(5)
    got = b""
    while len(got) < 2000:
        got += theirs.recv(65536)
    assert got == b"".join(b"%04d" % i for i in range(500))
    assert sock.send_calls == 2  # one for "one", one for the 500 gathered


def test_uncorking_waits_for_a_slow_reader_and_gives_up_on_a_dead_one(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    sock = BufferedSocket(ours, flush_timeout_s=0.5)
    block = b"x" * 4_000_000  # far beyond the kernel's socket buffers
    got = bytearray()

    def slow_reader() -> None:
        time.sleep(0.2)
        while len(got) < len(block):
            got.extend(theirs.recv(1 << 20))

    reader = threading.Thread(target=slow_reader)
    reader.start()
    with sock.corked():
        sock.send(block)
    reader.join(10)
    assert bytes(got) == block

    with pytest.raises(ConnectionError, match="read nothing"), sock.corked():
        sock.send(block)  # nobody reads now


def test_closing_inside_a_cork_sends_what_was_gathered_first(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    # paho closes the socket right after "writing" a DISCONNECT: inside a cork the packet
    # is still in the buffer, and must leave or the broker sees the connection drop
    ours, theirs = pair
    sock = BufferedSocket(ours)
    with sock.corked(wait=False):
        sock.send(b"\x40\x02\x00\x07")  # a PUBACK
        sock.send(b"\xe0\x00")  # DISCONNECT
        sock.close()
    theirs.settimeout(5)
    got = b""
    while chunk := theirs.recv(64):
        got += chunk
    assert got == b"\x40\x02\x00\x07\xe0\x00"


def test_an_event_loop_cork_never_waits_and_keeps_the_order(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    sock = BufferedSocket(ours)
    block = bytes(range(256)) * 16_000  # 4 MB: more than the kernel takes at once
    with sock.corked(wait=False):
        sock.send(block)
    assert 0 < sock.held < len(block)  # returned at once, the rest held
    assert sock.send(b"tail") == 4  # joins the held bytes, never jumps the queue
    got = bytearray()
    theirs.settimeout(5)
    while len(got) < len(block) + 4:
        got.extend(theirs.recv(1 << 20))
        sock.send_held()
    assert bytes(got) == block + b"tail"
    assert sock.held == 0
    assert sock.send(b"next") == 4  # straight out again
    assert theirs.recv(10) == b"next"


@pytest.mark.mqtt
def test_clients_on_the_buffered_socket_write_in_batches(
    mqtt_broker: Broker, topic_root: str
) -> None:
    # The socket is put in place through paho's socket factory: this fails when a paho
    # release renames it (and every client then silently runs without the buffer).
    topic = f"{topic_root}/air/aq-batch/telemetry"
    count = 2000
    received: list[bytes] = []

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append(bytes(msg.payload))

    sub = BufferedClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.username_pw_set(*mqtt_broker.login("sub"))
    sub.on_message = on_message
    pub = BufferedClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    pub.username_pw_set(*mqtt_broker.login("pub"))
    pub.max_inflight_messages_set(count)
    try:
        for client in (sub, pub):
            client.connect(mqtt_broker.host, mqtt_broker.port)
            while not client.is_connected():
                client.wait(0.05)
        sub.subscribe(topic, qos=1)
        sub.wait(1.0)  # the SUBACK
        pub_sock, sub_sock = pub.buffered_socket, sub.buffered_socket
        assert isinstance(pub_sock, BufferedSocket)
        assert isinstance(sub_sock, BufferedSocket)
        before = pub_sock.send_calls, sub_sock.send_calls
        with pub_sock.corked():
            infos = [pub.publish(topic, b"%05d" % i, qos=1) for i in range(count)]
        assert pub_sock.send_calls - before[0] <= 5  # 2,000 messages, a handful of writes
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            len(received) == count and all(i.is_published() for i in infos)
        ):
            sub.wait(0.01)
            pub.wait(0.01)
        assert received == [b"%05d" % i for i in range(count)]
        assert all(i.is_published() for i in infos)
        # the subscriber's 2,000 acknowledgements left in a few writes too
        assert sub_sock.send_calls - before[1] < count / 10
        assert sub_sock.recv_calls < count / 10
    finally:
        for client in (pub, sub):
            client.disconnect()


@pytest.mark.mqtt
def test_a_lost_connection_is_said(mqtt_broker: Broker) -> None:
    client = BufferedClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    with pytest.raises(ConnectionError, match="not connected"):
        client.pump()
    client.username_pw_set(*mqtt_broker.login("pub"))
    client.connect(mqtt_broker.host, mqtt_broker.port)
    while not client.is_connected():
        client.wait(0.05)
    sock = client.buffered_socket
    assert sock is not None
    sock.shutdown(socket.SHUT_RDWR)  # the connection goes away under the client
    with pytest.raises(ConnectionError, match="lost the broker"):
        client.wait(1.0)


@pytest.mark.mqtt
@pytest.mark.anyio
async def test_the_consumer_reads_a_burst_to_the_end(mqtt_broker: Broker, topic_root: str) -> None:
    # Thousands of small messages arrive in a few large reads, so most of them sit in the
    # socket's buffer where they wake no selector: they must still all be read, promptly.
    topic = f"{topic_root}/air/aq-burst/telemetry"
    consumer = Consumer(
        mqtt_broker.url_as(name := f"burst-{topic_root.split('/')[0]}"),
        client_id=f"hanoi-tester-{name}",
        subscriptions=[f"{topic_root}/+/+/telemetry"],
        receive_maximum=5000,
    )
    count = 5000
    async with consumer:
        await consumer.wait_connected()
        pub = BufferedClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        pub.username_pw_set(*mqtt_broker.login("pub"))
        pub.max_inflight_messages_set(count)
        pub.connect(mqtt_broker.host, mqtt_broker.port)
        pub.loop_start()
        try:
            await asyncio.sleep(0.2)
            infos = [pub.publish(topic, b"%05d" % i, qos=1) for i in range(count)]
            got: list[bytes] = []
            async with asyncio.timeout(20):
                while len(got) < count:
                    for message in await consumer.get_many(count):
                        got.append(message.payload)
                        consumer.ack(message)
            assert got == [b"%05d" % i for i in range(count)]
            for info in infos:
                info.wait_for_publish(10)
        finally:
            pub.disconnect()
            pub.loop_stop()
