"""Load mode against a real broker: it reports what it really sent, in both message shapes."""

import threading
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract import Topic, decode_telemetry, parse_mqtt_url
from simulators.load import LoadPlan, Shape, load_fleet, run_load
from tests.fixtures.mqtt import Broker

pytestmark = pytest.mark.mqtt


class Counter:
    """A paho subscriber in its own thread that keeps the payloads."""

    def __init__(self, broker: Broker, root: str) -> None:
        self.payloads: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        user, password = broker.login(f"c-{uuid.uuid4().hex[:8]}")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user)
        self.client.username_pw_set(user, password)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"{root}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.payloads.append((message.topic, bytes(message.payload)))

    def wait_for(self, n: int, timeout_s: float = 10.0) -> int:
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.payloads) >= n:
                    break
            time.sleep(0.05)
        self.client.loop_stop()
        self.client.disconnect()
        return len(self.payloads)


SHAPES: list[tuple[Shape, int]] = [("station", 1), ("senml", 2)]


@pytest.mark.parametrize(("shape", "processes"), SHAPES)
def test_load_reports_what_was_delivered(
    mqtt_broker: Broker, topic_root: str, shape: Shape, processes: int
) -> None:
    counter = Counter(mqtt_broker, topic_root)
    fleet = load_fleet(200)
    mqtt_broker.store.sync_registry(fleet, keep_secrets=True)  # devices and the 8 gateways
    mqtt_broker.reload()
    plan = LoadPlan(
        parse_mqtt_url(mqtt_broker.url),
        stations=200,
        rate_msgs_s=200.0,
        duration_s=1.0,
        shape=shape,
        processes=processes,
        root=topic_root,
        credentials_dir=mqtt_broker.store.secrets_dir,
    )
    report = run_load(plan)
    assert report.processes == processes
    assert report.acked == report.sent
    assert 150 <= report.sent <= 210
    assert counter.wait_for(report.sent) == report.sent
    readings = 0
    gateway_of = {s.station_id: s.gateway for s in fleet}
    for topic, payload in counter.payloads:
        parsed = Topic.parse(topic, topic_root)
        decoded = decode_telemetry(parsed, payload, datetime.now(UTC))
        assert not decoded.rejections
        readings += len(decoded.readings)
        # every reading is published by the station's own gateway (the ACL would refuse
        # anything else), on the station's topic or in a pack on the gateway's topic
        for r in decoded.readings:
            assert parsed.station_id in (r.station_id, gateway_of[r.station_id])
    assert readings == report.readings
    per_message = readings / report.sent
    assert per_message == 8 if shape == "station" else per_message >= 100


def test_load_fleet_is_a_registry_of_virtual_air_stations() -> None:
    fleet = load_fleet(12)
    assert [s.station_id for s in fleet][:2] == ["ld-00001", "ld-00002"]
    assert all(len(s.sensors) == 8 for s in fleet)
    assert [s.gateway for s in fleet][:3] == ["ld-gw-001", "ld-gw-002", "ld-gw-003"]
    assert fleet[8].gateway == "ld-gw-001"
