"""The pure generator: order, reproducibility, independence, and truth matching the data."""

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import Quantity, Topic, decode_status, decode_telemetry
from simulators.faults import FaultRates
from simulators.fleet import hanoi_fleet, select_stations
from simulators.generator import WILL_PAYLOAD, generate
from simulators.scenario import load_scenario
from simulators.stream import OutgoingKind
from tests.simulators.helpers import run_scenario

START = datetime(2025, 11, 12, tzinfo=UTC)
NOISY = FaultRates(0.5, 0.5, 0.01, 0.02, 0.5, 0.02, 0.02, 0.5, 0.01)


def _stream(
    patterns: list[str],
    seed: int,
    hours: float = 3,
    faults: FaultRates | None = None,
    name: str = "sensor-faults",
) -> list[bytes]:
    fleet = hanoi_fleet()
    scenario = load_scenario(name, fleet)
    items = generate(
        scenario,
        select_stations(fleet, patterns),
        START,
        START + timedelta(hours=hours),
        seed,
        faults=faults,
    )
    return [i.topic.encode() + b" " + i.payload for i in items]


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    patterns = ["aq-hoan-kiem", "fd-*", "wl-buoy-trich-sai", "tr-lang-*"]
    first = _stream(patterns, 11)
    assert first == _stream(patterns, 11)
    assert first != _stream(patterns, 12)


def test_a_station_does_not_depend_on_which_others_are_simulated() -> None:
    alone = [p for p in _stream(["fd-thai-ha"], 5) if b"fd-thai-ha" in p]
    together = [p for p in _stream(["fd-*", "aq-*", "rg-*"], 5) if b"fd-thai-ha" in p]
    assert alone == together


def test_fault_rates_do_not_change_the_underlying_signal() -> None:
    clean = decode_values(_stream(["aq-kim-lien"], 3, faults=FaultRates()))
    faulty = decode_values(_stream(["aq-kim-lien"], 3, faults=FaultRates(spike_rate=0.05)))
    same = np.isclose(clean, faulty)
    assert 0.85 < same.mean() < 1.0


def decode_values(lines: list[bytes]) -> np.ndarray:
    values: list[float] = []
    for line in lines:
        topic, payload = line.split(b" ", 1)
        if topic.endswith(b"/telemetry"):
            decoded = decode_telemetry(Topic.parse(topic.decode()), payload, START)
            values.extend(r.value for r in decoded.readings)
    return np.array(values)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    minutes=st.integers(5, 150),
    offset_min=st.integers(0, 60 * 24 * 365),
)
def test_stream_is_time_ordered_and_well_formed(seed: int, minutes: int, offset_min: int) -> None:
    fleet = hanoi_fleet()
    start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=offset_min)
    stations = select_stations(
        fleet, ["aq-my-dinh", "wl-*", "rg-lang", "fd-lang-ha", "tr-ring-3-*"]
    )
    items = list(
        generate(
            load_scenario("quiet-week", fleet),
            stations,
            start,
            start + timedelta(minutes=minutes),
            seed,
            faults=NOISY,
        )
    )
    times = [i.sim_time for i in items]
    assert times == sorted(times)
    for item in items:
        topic = Topic.parse(item.topic) if item.kind is not OutgoingKind.TRUTH else None
        if item.kind is OutgoingKind.ONLINE or item.kind is OutgoingKind.OFFLINE:
            assert topic is not None
            assert item.retain
            assert decode_status(topic, item.payload, item.sim_time).online is (
                item.kind is OutgoingKind.ONLINE
            )
        if item.kind is OutgoingKind.TRUTH:
            assert item.truth is not None
            assert item.truth.start <= item.truth.end


def test_values_stay_physical_and_only_malformed_messages_are_refused() -> None:
    _, _, out = run_scenario("sensor-faults", ["aq-*", "fd-*", "wl-*"], hours=12, start=START)
    assert out.refused == len(out.labels("malformed")) > 0
    for (station, quantity), rows in out.series.items():
        assert np.all(np.isfinite(rows[:, 1])), (station, quantity)


def test_spikes_in_the_truth_are_in_the_data() -> None:
    _, _, out = run_scenario(
        "quiet-week", ["aq-kim-lien"], hours=24, start=START, faults=FaultRates(spike_rate=0.003)
    )
    spikes = out.labels("spike")
    assert spikes
    for label in spikes:
        (quantity,) = label.quantities
        times = out.times("aq-kim-lien", quantity)
        values = out.values("aq-kim-lien", quantity)
        at = int(np.searchsorted(times, label.start.timestamp()))
        neighbours = np.concatenate([values[max(0, at - 5) : at], values[at + 1 : at + 6]])
        assert abs(values[at] - np.median(neighbours)) > 2 * neighbours.std() + 1e-6


def test_stuck_offline_and_dropout_labels_match_the_published_data() -> None:
    rates = FaultRates(stuck_per_day=2.0, offline_per_day=2.0, dropout_rate=0.02)
    _, _, out = run_scenario("quiet-week", ["fd-*"], hours=24, start=START, faults=rates)
    for label in out.labels("stuck"):
        values = out.series[(label.station_id, Quantity.WATER_DEPTH)]
        inside = (values[:, 0] >= label.start.timestamp()) & (values[:, 0] < label.end.timestamp())
        if inside.sum() > 1:
            assert np.ptp(values[inside, 1]) == 0
    for label in out.labels("offline") + out.labels("dropout"):
        times = out.times(label.station_id, Quantity.WATER_DEPTH)
        inside = (times >= label.start.timestamp()) & (times <= label.end.timestamp())
        if label.kind == "offline":
            inside &= times < label.end.timestamp()
        assert not inside.any(), label
    crashes = [i for i in out.items if i.kind is OutgoingKind.OFFLINE]
    assert len(crashes) == len(out.labels("offline")) > 0
    assert all(c.payload == WILL_PAYLOAD for c in crashes)


def test_every_label_has_a_unique_id() -> None:
    _, _, out = run_scenario("sensor-faults", ["aq-*", "tr-*"], hours=6, start=START)
    ids = [e.event_id for e in out.truth]
    assert len(ids) == len(set(ids)) > 10
