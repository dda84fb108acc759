"""Publishing over a real broker: everything arrives, truth matches, wills fire, reconnects work."""

import asyncio
import contextlib
import math
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from contract import MAX_PAYLOAD_BYTES, decode_truth
from hanoi_ioc.embedded import EmbeddedBroker
from simulators.clock import SimClock
from simulators.faults import FaultKind, FaultRates, ScriptedFault
from simulators.fleet import hanoi_fleet, select_stations
from simulators.generator import WILL_PAYLOAD, generate
from simulators.publisher import Publisher
from simulators.scenario import Scenario, load_scenario
from simulators.settings import SimulatorSettings
from simulators.stream import Outgoing, OutgoingKind
from simulators.truth import TruthFile, read_truth_file
from tests.fixtures.mqtt import Broker

pytestmark = [pytest.mark.mqtt, pytest.mark.anyio]

START = datetime(2025, 11, 12, 1, tzinfo=UTC)
RATES = FaultRates(
    spike_rate=0.01,
    dropout_rate=0.02,
    duplicate_rate=0.02,
    out_of_order_rate=0.02,
    malformed_rate=0.01,
    offline_per_day=6.0,
    clock_skew_per_day=3.0,
)
Message = tuple[str, bytes, bool]


def _settings(url: str, protocol: str, root: str, credentials: Path) -> SimulatorSettings:
    return SimulatorSettings(
        mqtt_url=url,
        mqtt_protocol=protocol,
        topic_root=root,
        credentials_dir=credentials,
        speed="max",
        client_id_prefix=f"t{uuid.uuid4().hex[:8]}",
        progress_interval_s=0.5,
        reconnect_initial_s=0.1,
        reconnect_max_s=0.5,
    )


async def _collect(client: aiomqtt.Client, into: list[Message]) -> None:
    async for message in client.messages:
        payload = message.payload if isinstance(message.payload, bytes) else b""
        into.append((str(message.topic), payload, message.retain))


async def _publish_and_collect(
    broker: Broker,
    root: str,
    scenario: Scenario,
    patterns: list[str],
    minutes: float,
    truth_path: Path | None = None,
    rates: FaultRates | None = None,
) -> tuple[list[Outgoing], list[Message]]:
    stations = select_stations(hanoi_fleet(), patterns)
    end = START + timedelta(minutes=minutes)
    expected = list(generate(scenario, stations, START, end, 3, faults=rates, root=root))
    settings = _settings(broker.url, broker.protocol, root, broker.devices(stations))
    received: list[Message] = []
    user, password = broker.login(f"sub-{uuid.uuid4().hex[:8]}")
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=user, username=user, password=password
    ) as sub:
        await sub.subscribe(f"{root}/#", qos=1)
        collector = asyncio.create_task(_collect(sub, received))
        stream = generate(scenario, stations, START, end, 3, faults=rates, root=root)
        with TruthFile(truth_path) if truth_path else _null() as truth:
            publisher = Publisher(settings, stations, SimClock(START, math.inf), truth_file=truth)
            stats = await publisher.run(stream)
        wanted = sum(
            i.kind in (OutgoingKind.TELEMETRY, OutgoingKind.TRUTH) and _deliverable(i)
            for i in expected
        )
        async with asyncio.timeout(10):
            while sum(not t.endswith("/status") for t, _, _ in received) < wanted:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        collector.cancel()
    assert stats.dropped == 0
    # what the broker refuses for good is counted, so a reader of the stats (evaluate's
    # drain) does not wait for it: every oversized message, and nothing else
    assert stats.refused == sum(not _deliverable(i) for i in expected)
    return expected, received


def _deliverable(item: Outgoing) -> bool:
    """The broker refuses a payload over the contract's limit (the ``oversized`` fault)."""
    return len(item.payload) <= MAX_PAYLOAD_BYTES


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


async def test_backfill_delivers_every_message_and_the_truth_matches(
    mqtt_broker: Broker, topic_root: str, tmp_path: Path
) -> None:
    scenario = load_scenario("quiet-week", hanoi_fleet())
    truth_path = tmp_path / "truth.jsonl"
    expected, received = await _publish_and_collect(
        mqtt_broker,
        topic_root,
        scenario,
        ["aq-kim-lien", "fd-thai-ha", "rg-lang", "tr-lang-1", "wl-buoy-thanh-nien"],
        180,
        truth_path,
        RATES,
    )

    def telemetry(items: list[tuple[str, bytes]]) -> Counter[tuple[str, bytes]]:
        return Counter(i for i in items if i[0].endswith("/telemetry"))

    want = telemetry([(i.topic, i.payload) for i in expected if _deliverable(i)])
    got = telemetry([(t, p) for t, p, _ in received])
    assert set(got) == set(want)
    assert all(got[k] >= n for k, n in want.items())  # QoS 1: at least once
    # ground truth: file == truth topic == the generator's labels
    labels = [i.truth for i in expected if i.truth is not None]
    assert {k.kind for k in labels} >= {"spike", "duplicate", "out_of_order", "malformed"}
    assert read_truth_file(truth_path) == labels
    on_topic = [decode_truth(p) for t, p, _ in received if t.endswith("/_sim/truth")]
    assert Counter(e.event_id for e in on_topic) >= Counter(e.event_id for e in labels)
    # every device that dropped off had its last will published by the broker
    crashed = {i.topic for i in expected if i.kind is OutgoingKind.OFFLINE}
    wills = {t for t, p, _ in received if p == WILL_PAYLOAD}
    assert crashed <= wills


async def test_last_will_is_retained_when_a_device_dies(
    mqtt_broker: Broker, topic_root: str
) -> None:
    base = load_scenario("quiet-week", hanoi_fleet())
    scenario = Scenario(
        "will",
        "",
        "",
        "",
        background_rain="none",
        scripted_faults=(ScriptedFault(FaultKind.OFFLINE, "fd-thai-ha", 600.0, 86400.0),),
    )
    assert base.events == ()
    await _publish_and_collect(mqtt_broker, topic_root, scenario, ["fd-thai-ha", "fd-lang-ha"], 30)
    retained: dict[str, bytes] = {}
    user, password = mqtt_broker.login()
    async with aiomqtt.Client(
        mqtt_broker.host, mqtt_broker.port, identifier=user, username=user, password=password
    ) as late:
        await late.subscribe(f"{topic_root}/+/+/status", qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                async for message in late.messages:
                    assert message.retain
                    assert isinstance(message.payload, bytes)
                    retained[str(message.topic)] = message.payload
    assert retained[f"{topic_root}/flood/fd-thai-ha/status"] == WILL_PAYLOAD
    graceful = retained[f"{topic_root}/flood/fd-lang-ha/status"]
    assert b'"offline"' in graceful
    assert b"shutdown" in graceful


async def test_devices_reconnect_after_the_broker_restarts(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def tolerate(lp: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        # aiomqtt registers socket callbacks from paho's thread; when the broker dies the
        # socket can be gone before the callback runs. Harmless, and not ours to fix.
        if "add_writer" in str(context.get("message")) or "add_reader" in str(
            context.get("message")
        ):
            return
        if previous is not None:
            previous(lp, context)
        else:
            lp.default_exception_handler(context)

    loop.set_exception_handler(tolerate)
    broker = EmbeddedBroker(tmp_path / "mqtt", root="reconnect/v1")
    stations = select_stations(hanoi_fleet(), ["aq-*", "rg-*"])
    broker.credentials.sync_registry(stations, keep_secrets=True)
    broker.credentials.issue_operational("simulator")
    try:
        with broker:
            scenario = load_scenario("quiet-week", hanoi_fleet())
            stream = generate(scenario, stations, START, START + timedelta(hours=4), 1)
            settings = _settings(
                broker.url, broker.protocol, "reconnect/v1", broker.credentials.secrets_dir
            ).model_copy(update={"outbox_size": 100})
            publisher = Publisher(settings, stations, SimClock(START, math.inf))
            run = asyncio.create_task(publisher.run(stream))
            await asyncio.sleep(0.5)
            broker.kill()
            await asyncio.sleep(0.5)
            broker.start()
            stats = await asyncio.wait_for(run, 60)
    finally:
        loop.set_exception_handler(previous)
    assert stats.retries > 0
    assert stats.dropped == 0
    assert stats.acked >= stats.handed_over - len(stations)  # the ONLINE items are not published
