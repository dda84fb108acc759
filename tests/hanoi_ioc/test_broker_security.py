"""The broker's trust boundary, on a real Mosquitto run from the production configuration.

Who may connect (nobody anonymous, nobody with a wrong or revoked password), as whom (a
client id is its user name: nobody takes over a service's session), and publish or read
what (a device its own station's topics, a gateway its stations', a service reads only);
credentials rotated without restarting the broker; the size limit; TLS that devices verify.
"""

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
import trustme
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract import (
    MAX_PAYLOAD_BYTES,
    Domain,
    Quantity,
    Sensor,
    Station,
    StationId,
    encode_telemetry,
)
from db import register_stations
from hanoi_ioc.credentials import CredentialStore
from hanoi_ioc.embedded import EmbeddedBroker, TlsFiles
from ingest.service import IngestService
from stream.consumer import Consumer, Subscription
from tests.fixtures.mqtt import Broker
from tests.ingest.test_faults import Publisher, settings_for

pytestmark = pytest.mark.mqtt

AIR = tuple(Station(StationId(f"aq-sec-{i}"), Domain.AIR, f"An ninh {i}", "Ba Đình", 21.03,
                    105.83, "urban", (Sensor(Quantity.PM25, 60.0), Sensor(Quantity.NO2, 60.0)),
                    {"gateway": "gw-sec"} if i < 2 else {})
            for i in range(3))  # fmt: skip
"""aq-sec-0 and aq-sec-1 are registered to gateway gw-sec; aq-sec-2 is not."""
ACCEPTED = {"Success", "No matching subscribers"}


@dataclass
class Session:
    """A paho client in its own network thread, recording what happens to it."""

    client: mqtt.Client
    connected: str = ""
    session_present: bool = False
    disconnected: list[str] = field(default_factory=list)
    published: dict[int, str] = field(default_factory=dict)
    received: list[tuple[str, bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> str:
        """Publish at QoS 1; the PUBACK's reason (MQTT 5), or what ended the connection."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        deadline = time.monotonic() + 5
        while info.mid not in self.published and time.monotonic() < deadline:
            if self.disconnected:
                return f"disconnected: {self.disconnected[-1]}"
            time.sleep(0.01)
        return self.published.get(info.mid, "no PUBACK")

    def close(self) -> None:
        """Disconnect (a clean DISCONNECT) and stop the network thread."""
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


def session(
    port: int,
    user: str | None,
    password: str | None,
    *,
    client_id: str = "",
    clean: bool = True,
    subscribe: str | None = None,
    protocol: MQTTProtocolVersion = mqtt.MQTTv5,
    tls: Path | None = None,
) -> Session:
    """Connect (and wait for the CONNACK, or the refusal)."""
    v5 = protocol == mqtt.MQTTv5
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or f"c-{uuid.uuid4().hex[:8]}",
        protocol=protocol, clean_session=None if v5 else clean,
    )  # fmt: skip
    s = Session(client)
    if user is not None:
        client.username_pw_set(user, password)
    if tls is not None:
        client.tls_set(ca_certs=str(tls))

    def on_connect(c: mqtt.Client, u: object, flags: object, rc: object, p: object) -> None:
        s.connected = str(rc)
        s.session_present = bool(getattr(flags, "session_present", False))

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: object, p: object) -> None:
        s.published[mid] = str(rc)

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        with s.lock:
            s.received.append((m.topic, bytes(m.payload), bool(m.retain)))

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.on_message = on_message
    client.on_disconnect = lambda c, u, f, rc, p: s.disconnected.append(str(rc))
    properties = None
    if protocol == mqtt.MQTTv5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 0 if clean else 3600
    kwargs = {"clean_start": clean, "properties": properties} if protocol == mqtt.MQTTv5 else {}
    client.connect("127.0.0.1", port, keepalive=10, **kwargs)  # type: ignore[arg-type]
    client.loop_start()
    deadline = time.monotonic() + 5
    while not s.connected and not s.disconnected and time.monotonic() < deadline:
        time.sleep(0.01)
    if subscribe is not None and s.connected == "Success":
        client.subscribe(subscribe, qos=1)
        time.sleep(0.2)
    return s


@contextlib.contextmanager
def opened(*sessions: Session) -> Iterator[None]:
    try:
        yield
    finally:
        for s in sessions:
            s.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker of this module's own, its users issued as production issues them."""
    root = tmp_path_factory.mktemp("secured")
    store = CredentialStore(root / "credentials")  # grants for the production root hanoi/v1
    store.sync_registry(AIR, keep_secrets=True)
    store.issue_service("ingest", "sec")
    store.issue_operational("observer")
    store.issue("hanoi-tester-sec", "tester")
    with EmbeddedBroker(root / "mqtt", credentials=store) as broker:
        yield broker


def _login(broker: EmbeddedBroker, user: str) -> tuple[str, str]:
    return user, broker.credentials.secret(user)


def _topic(station: str, kind: str = "telemetry", domain: str = "air") -> str:
    return f"hanoi/v1/{domain}/{station}/{kind}"


def test_nobody_connects_without_a_valid_password(secured: EmbeddedBroker) -> None:
    anonymous = session(secured.port, None, None)
    wrong = session(secured.port, "aq-sec-0", "not-the-password")
    unknown = session(secured.port, "aq-nobody", "whatever")
    with opened(anonymous, wrong, unknown):
        for attempt in (anonymous, wrong, unknown):
            assert attempt.connected != "Success", attempt


def test_a_device_publishes_its_own_station_only(secured: EmbeddedBroker) -> None:
    watcher = session(secured.port, *_login(secured, "hanoi-observer"), subscribe="hanoi/v1/#")
    device = session(secured.port, *_login(secured, "aq-sec-2"))
    with opened(watcher, device):
        assert device.publish(_topic("aq-sec-2"), b"mine") == "Success"
        assert device.publish(_topic("aq-sec-2", "status"), b"online") == "Success"
        assert device.publish(_topic("aq-sec-0"), b"theirs") == "Not authorized"
        assert device.publish(_topic("aq-sec-2", domain="water"), b"x") == "Not authorized"
        assert device.publish(_topic("aq-sec-2", "cmd"), b"x") == "Not authorized"
        assert device.publish("hanoi/v1/_sim/truth", b"x") == "Not authorized"
        time.sleep(0.3)
    assert [(t, p) for t, p, _ in watcher.received] == [
        (_topic("aq-sec-2"), b"mine"),
        (_topic("aq-sec-2", "status"), b"online"),
    ]


def test_a_gateway_publishes_for_its_registered_stations_only(secured: EmbeddedBroker) -> None:
    watcher = session(secured.port, *_login(secured, "hanoi-observer"), subscribe="hanoi/v1/#")
    gateway = session(secured.port, *_login(secured, "gw-sec"))
    with opened(watcher, gateway):
        assert gateway.publish(_topic("gw-sec"), b"pack") == "Success"
        assert gateway.publish(_topic("aq-sec-0"), b"for 0") == "Success"
        assert gateway.publish(_topic("aq-sec-1", "status"), b"online") == "Success"
        assert gateway.publish(_topic("aq-sec-2"), b"not mine") == "Not authorized"
        time.sleep(0.3)
    assert {p for _, p, _ in watcher.received} == {b"pack", b"for 0", b"online"}


def test_services_and_observers_read_only(secured: EmbeddedBroker) -> None:
    service = session(secured.port, *_login(secured, "hanoi-ingest-sec"),
                      client_id="hanoi-ingest-sec")  # fmt: skip
    observer = session(secured.port, *_login(secured, "hanoi-observer"))
    with opened(service, observer):
        assert service.publish(_topic("aq-sec-0"), b"forged") == "Not authorized"
        assert observer.publish(_topic("aq-sec-0"), b"forged") == "Not authorized"


def test_a_client_id_is_its_user_name(secured: EmbeddedBroker) -> None:
    """A device asking for the ingestor's client id (and a clean start) gets its own."""
    device = session(secured.port, *_login(secured, "aq-sec-2"), client_id="hanoi-ingest-sec",
                     clean=True)  # fmt: skip
    with opened(device):
        assert device.connected == "Success"
    log = (secured.data_dir / "mosquitto.log").read_text()
    assert "as aq-sec-2 (" in log  # the broker named the session after the user


def test_rotation_and_revocation_without_restarting_the_broker(
    secured: EmbeddedBroker,
) -> None:
    assert secured._proc is not None
    pid = secured._proc.pid
    old = secured.credentials.secret("aq-sec-1")
    still = session(secured.port, "aq-sec-1", old)
    with opened(still):
        secured.credentials.rotate("aq-sec-1")
        secured.reload(wait=True)
        new = secured.credentials.secret("aq-sec-1")
        assert session(secured.port, "aq-sec-1", old).connected != "Success"
        fresh = session(secured.port, "aq-sec-1", new, client_id="x")
        with opened(fresh):
            assert fresh.connected == "Success"
        secured.credentials.revoke("aq-sec-1")
        secured.reload(wait=True)
        assert session(secured.port, "aq-sec-1", new).connected != "Success"
    assert secured._proc.pid == pid
    assert secured._proc.poll() is None
    secured.credentials.sync_registry(AIR, keep_secrets=True)  # back for the other tests
    secured.reload(wait=True)


def test_the_broker_refuses_a_message_over_the_size_limit(secured: EmbeddedBroker) -> None:
    watcher = session(secured.port, *_login(secured, "hanoi-observer"), subscribe="hanoi/v1/#")
    device = session(secured.port, *_login(secured, "aq-sec-2"), protocol=mqtt.MQTTv311)
    with opened(watcher, device):
        device.publish(_topic("aq-sec-2"), b"x" * (MAX_PAYLOAD_BYTES + 1))
        device.publish(_topic("aq-sec-2"), b"x" * MAX_PAYLOAD_BYTES)
        time.sleep(0.5)
    assert [len(p) for _, p, _ in watcher.received] == [MAX_PAYLOAD_BYTES]


@pytest.mark.anyio
async def test_retained_telemetry_is_not_heard_again_on_reconnect(
    secured: EmbeddedBroker,
) -> None:
    tester = _login(secured, "hanoi-tester-sec")
    device = session(secured.port, *_login(secured, "aq-sec-2"))
    with opened(device):
        assert device.publish(_topic("aq-sec-2"), b"retained", retain=True) in ACCEPTED
        assert device.publish(_topic("aq-sec-2", "status"), b"online", retain=True) in ACCEPTED
    url = f"mqtt://{tester[0]}:{tester[1]}@127.0.0.1:{secured.port}"
    got: list[tuple[str, bool]] = []
    for _ in range(2):  # a new session, then the same session again
        consumer = Consumer(
            url, client_id=tester[0], session_expiry_s=600,
            subscriptions=[Subscription("hanoi/v1/+/+/telemetry", "never"),
                           Subscription("hanoi/v1/+/+/status", "new")],
        )  # fmt: skip
        async with consumer:
            await consumer.wait_connected()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    while True:
                        for m in await consumer.get_many(10):
                            got.append((m.topic, m.retain))
                            consumer.ack(m)
    # the status once, for the new subscription; the retained telemetry never
    assert got == [(_topic("aq-sec-2", "status"), True)]


@pytest.mark.db
@pytest.mark.anyio
async def test_a_takeover_of_the_ingestors_session_fails_and_loses_nothing(
    mqtt_broker: Broker, db_url: str, topic_root: str
) -> None:
    """A device connects with the ingestor's client id and a clean start, while the ingestor
    runs and while it is down: the ingestor's session and every reading survive."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await register_stations(conn, AIR)
    devices = mqtt_broker.devices(AIR)
    del devices
    settings = settings_for(db_url, mqtt_broker, topic_root, instance=f"to-{uuid.uuid4().hex[:6]}")
    attacker = ("aq-sec-2", mqtt_broker.store.secret("aq-sec-2"))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    values = [(Quantity.PM25, 12.0), (Quantity.NO2, 30.0)]
    messages = [(f"{topic_root}/air/aq-sec-0/telemetry",
                 encode_telemetry("aq-sec-0", start + timedelta(seconds=i), values))
                for i in range(300)]  # fmt: skip
    login = mqtt_broker.login("pub")
    service = IngestService(settings)
    async with service:
        await service.consumer.wait_connected()
        runner = asyncio.create_task(service.run())
        await asyncio.to_thread(Publisher(mqtt_broker.host, mqtt_broker.port, messages[:100],
                                          login=login).run, 30)  # fmt: skip
        thief = session(mqtt_broker.port, *attacker, client_id=settings.client_id, clean=True)
        thief.close()
        await asyncio.sleep(0.5)
        assert service.consumer.stats.disconnects == 0  # nobody took its connection
        await asyncio.to_thread(Publisher(mqtt_broker.host, mqtt_broker.port, messages[100:200],
                                          login=login).run, 30)  # fmt: skip
        async with asyncio.timeout(20):
            while service.counts["stored"] < 200 * 2:
                await asyncio.sleep(0.05)
        service.stop()
        await runner
    # The ingestor is down: a device tries to wipe its session with a clean start, then the
    # rest is published. It must be waiting in the session when the ingestor comes back.
    thief = session(mqtt_broker.port, *attacker, client_id=settings.client_id, clean=True)
    thief.close()
    await asyncio.to_thread(Publisher(mqtt_broker.host, mqtt_broker.port, messages[200:],
                                      login=login).run, 30)  # fmt: skip
    again = IngestService(settings)
    async with again:
        runner = asyncio.create_task(again.run())
        async with asyncio.timeout(20):
            while again.counts["stored"] < 100 * 2:
                await asyncio.sleep(0.05)
        again.stop()
        await runner
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM readings")
        row = await cur.fetchone()
    assert row == (300 * 2,)


@pytest.mark.anyio
async def test_devices_and_services_verify_the_broker_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = tmp_path / "server.crt", tmp_path / "server.key", tmp_path / "ca"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    other = tmp_path / "other-ca"
    trustme.CA().cert_pem.write_to_path(str(other))
    store = CredentialStore(tmp_path / "credentials")
    user = store.issue_service("ingest", "tls")
    with EmbeddedBroker(tmp_path / "mqtt", credentials=store,
                        tls=TlsFiles(certfile, keyfile)) as broker:  # fmt: skip
        assert broker.tls_port is not None
        password = store.secret(user)
        trusted = session(broker.tls_port, user, password, client_id=user, tls=cafile)
        with opened(trusted):
            assert trusted.connected == "Success"
        with pytest.raises(OSError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
            session(broker.tls_port, user, password, tls=other)
        consumer = Consumer(
            f"mqtts://127.0.0.1:{broker.tls_port}", client_id=user, username=user,
            password=lambda: store.secret(user), ca_file=str(cafile),
            subscriptions=[Subscription("hanoi/v1/+/+/telemetry")],
        )  # fmt: skip
        async with consumer:
            await consumer.wait_connected(10)
