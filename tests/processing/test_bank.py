"""DetectorBank: lanes keyed by sensor id, growth, overflow, context, snapshots."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from contract import Domain, Quantity, Reading, Sensor, Station, StationId
from processing.bank import DetectorBank, LaneSpec, OverflowPolicy, SlotMap
from processing.detectors import SpatialDetector
from processing.errors import DetectorConfigError, SnapshotError

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def reading(station: str, quantity: Quantity, value: float, minute: float) -> Reading:
    at = T0 + timedelta(minutes=minute)
    return Reading(StationId(station), quantity, value, at, at)


def air_station(station: str, lat: float, lon: float) -> Station:
    sensors = (Sensor(Quantity.PM25, 60.0), Sensor(Quantity.PM10, 60.0))
    return Station(StationId(station), Domain.AIR, station, "Hoàn Kiếm", lat, lon, "aq", sensors)


def pm_batch(minute: int, stations: int = 5, spike_at: int | None = None) -> list[Reading]:
    noise = np.random.default_rng(minute).normal(0.0, 1.5, stations)
    out = []
    for i in range(stations):
        value = 40.0 + i + (minute % 3) * 0.5 + float(noise[i])
        if i == spike_at:
            value = 400.0
        out.append(reading(f"aq-{i}", Quantity.PM25, value, minute))
        out.append(reading(f"aq-{i}", Quantity.PM10, 1.5 * value, minute))
    return out


SPECS = [
    LaneSpec("spike", "spike"),
    LaneSpec("pm_spatial", "spatial", quantities=frozenset({Quantity.PM25})),
    LaneSpec("oxygen", "oxygen_risk"),
    LaneSpec("flatline", "flatline", {"min_still": 3.0}, frozenset({Quantity.PM10}), threshold=0.4),
]


def test_lanes_route_by_quantity_and_report_detections() -> None:
    bank = DetectorBank(SPECS)
    bank.register(air_station(f"aq-{i}", 21.02 + 0.003 * i, 105.85) for i in range(5))
    for minute in range(40):
        result = bank.process(pm_batch(minute))
    assert not result.detections()
    result = bank.process(pm_batch(40, spike_at=2))
    found = {(d.lane, d.reading.sensor_id) for d in result.detections()}
    assert ("spike", "aq-2.pm25") in found
    assert ("spike", "aq-2.pm10") in found
    assert ("pm_spatial", "aq-2.pm25") not in found  # one odd reading is not a drift
    assert all(d.reading.station_id == "aq-2" for d in result.detections())
    lanes = {lane.lane: lane for lane in result.lanes}
    assert lanes["pm_spatial"].indices.size == 5  # PM2.5 only
    assert lanes["oxygen"].indices.size == 0  # no dissolved oxygen in the batch
    assert lanes["flatline"].threshold == 0.4
    best = result.max_scores()
    assert best.shape == (10,)
    assert best[4] > 0.5  # aq-2.pm25 is the 5th reading
    stats = bank.stats()
    assert stats["spike.sensors"] == 10
    assert stats["pm_spatial.sensors"] == 5
    detector = bank.lane_detector("pm_spatial")
    assert isinstance(detector, SpatialDetector)
    with pytest.raises(DetectorConfigError):
        bank.lane_detector("nope")


def test_context_readings_reach_the_oxygen_lane() -> None:
    bank = DetectorBank([LaneSpec("oxygen", "oxygen_risk")])
    batch = [
        reading("wq-tay-ho", Quantity.WATER_TEMPERATURE, 30.0, 0),
        reading("wq-tay-ho", Quantity.CHLOROPHYLL_A, 150.0, 0),
        reading("wq-tay-ho", Quantity.DISSOLVED_OXYGEN, 1.2, 0),
    ]
    result = bank.process(batch)
    (lane,) = result.lanes
    assert lane.indices.tolist() == [2]
    assert [d.reading.quantity for d in result.detections()] == [Quantity.DISSOLVED_OXYGEN]
    detector = bank.lane_detector("oxygen")
    parts = detector.components([0], [1.2], [T0.timestamp()])  # type: ignore[attr-defined]
    assert parts["saturation_pct"][0] == pytest.approx(100 * 1.2 / 7.44, abs=0.2)


def test_overflow_refuse_and_evict() -> None:
    refuse = DetectorBank([LaneSpec("ewma", "ewma")], max_sensors=3)
    refuse.process([reading(f"s-{i}", Quantity.PM25, 1.0, 0) for i in range(5)])
    assert refuse.stats() == {"ewma.sensors": 3, "ewma.refused": 2, "ewma.evicted": 0}
    evict = DetectorBank(
        [LaneSpec("ewma", "ewma")], max_sensors=3, overflow=OverflowPolicy.EVICT_LRU
    )
    for minute in range(30):
        evict.process(
            [reading(f"s-{i}", Quantity.PM25, 5.0 + minute % 2, minute) for i in range(3)]
        )
    evict.process([reading("s-new", Quantity.PM25, 1.0, 31)])
    stats = evict.stats()
    assert (stats["ewma.sensors"], stats["ewma.evicted"]) == (3, 1)
    # The newcomer took a slot whose state was reset: no leftover baseline to compare with.
    assert evict.process([reading("s-new", Quantity.PM25, 500.0, 32)]).detections() == []


def test_slot_map_lru_order() -> None:
    slots = SlotMap(2, OverflowPolicy.EVICT_LRU)
    first, _ = slots.assign(["a", "b"], np.array([10.0, 20.0]))
    assert first.tolist() == [0, 1]
    again, evicted = slots.assign(["a", "c"], np.array([30.0, 31.0]))
    assert again.tolist() == [0, 1]  # "b" was least recently seen
    assert evicted.tolist() == [1]
    assert slots.get("b") is None
    assert len(slots) == 2
    with pytest.raises(DetectorConfigError):
        SlotMap(0, OverflowPolicy.REFUSE)


def test_snapshot_bytes_and_pickle_restore_without_cold_start() -> None:
    bank = DetectorBank(SPECS)
    bank.register(air_station(f"aq-{i}", 21.02 + 0.003 * i, 105.85) for i in range(5))
    for minute in range(30):
        bank.process(pm_batch(minute))
    blob = bank.to_bytes()
    restored = DetectorBank.from_bytes(blob)
    unpickled = pickle.loads(pickle.dumps(bank))  # noqa: S301 - our own object
    later = pm_batch(30, spike_at=1)
    expected = bank.process(later)
    for twin in (restored, unpickled):
        got = twin.process(later)
        assert [d.lane for d in got.detections()] == [d.lane for d in expected.detections()]
        for a, b in zip(got.lanes, expected.lanes, strict=True):
            np.testing.assert_array_equal(a.scores, b.scores)
    assert restored.stats() == bank.stats()
    assert restored.specs == bank.specs


def test_restore_with_changed_configuration_starts_changed_lanes_cold() -> None:
    bank = DetectorBank([LaneSpec("a", "ewma"), LaneSpec("b", "spike")])
    for minute in range(20):
        bank.process([reading("s", Quantity.PM25, 1.0 + minute % 2, minute)])
    changed = [
        LaneSpec("a", "ewma", {"alpha": 0.2}),
        LaneSpec("b", "spike"),
        LaneSpec("c", "cusum"),
    ]
    restored = DetectorBank.from_bytes(bank.to_bytes(), changed)
    stats = restored.stats()
    assert (stats["a.sensors"], stats["b.sensors"], stats["c.sensors"]) == (0, 1, 0)


def test_bad_configuration_and_snapshots_are_refused() -> None:
    with pytest.raises(DetectorConfigError):
        DetectorBank([LaneSpec("x", "nope")])
    with pytest.raises(DetectorConfigError):
        DetectorBank([LaneSpec("x", "ewma"), LaneSpec("x", "spike")])
    with pytest.raises(SnapshotError):
        DetectorBank.from_bytes(b"not a snapshot")


def test_check_silence_reports_dead_sensors() -> None:
    bank = DetectorBank([LaneSpec("dropout", "dropout", {"interval_s": 60.0})])
    for minute in range(400):  # a few hundred gaps: a calibration that can back a rarity
        batch = [reading("aq-1", Quantity.PM25, 1.0, minute)]
        if minute < 380:
            batch.append(reading("aq-2", Quantity.PM25, 1.0, minute))
        bank.process(batch)
    now = (T0 + timedelta(minutes=400)).timestamp()
    silent = bank.check_silence(now)
    assert [(lane, sensor) for lane, sensor, _ in silent] == [("dropout", "aq-2.pm25")]
    assert DetectorBank([LaneSpec("e", "ewma")]).check_silence(now) == []
