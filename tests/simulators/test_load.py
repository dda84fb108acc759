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
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"c-{uuid.uuid4().hex[:8]}"
        )
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
    plan = LoadPlan(
        parse_mqtt_url(mqtt_broker.url),
        stations=40,
        rate_msgs_s=200.0,
        duration_s=1.0,
        shape=shape,
        processes=processes,
        root=topic_root,
    )
    report = run_load(plan)
    assert report.processes == processes
    assert report.acked == report.sent
    assert 150 <= report.sent <= 210
    assert counter.wait_for(report.sent) == report.sent
    readings = 0
    for topic, payload in counter.payloads:
        decoded = decode_telemetry(Topic.parse(topic, topic_root), payload, datetime.now(UTC))
        assert not decoded.rejections
        readings += len(decoded.readings)
    assert readings == report.readings
    per_message = readings / report.sent
    assert per_message == 8 if shape == "station" else per_message >= 100


def test_load_fleet_is_a_registry_of_virtual_air_stations() -> None:
    fleet = load_fleet(12)
    assert [s.station_id for s in fleet][:2] == ["ld-00001", "ld-00002"]
    assert all(len(s.sensors) == 8 for s in fleet)
