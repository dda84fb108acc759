"""The fleet: counts, places, metadata and the registry document."""

from collections import Counter

from contract import Domain, Quantity, decode_registry, encode_registry
from simulators.fleet import hanoi_fleet, select_stations


def test_fleet_has_the_promised_stations() -> None:
    fleet = hanoi_fleet()
    kinds = Counter(s.kind for s in fleet)
    assert kinds == {
        "air_quality": 12,
        "buoy": 4,
        "rain_gauge": 10,
        "flood_depth": 20,
        "traffic": 30,
    }
    assert len({s.station_id for s in fleet}) == len(fleet)
    assert fleet == hanoi_fleet()  # deterministic


def test_ids_follow_the_naming_scheme() -> None:
    ids = {s.station_id for s in hanoi_fleet()}
    for expected in (
        "aq-hoan-kiem",
        "wl-buoy-trich-sai",
        "rg-o-cho-dua",
        "fd-thai-ha",
        "tr-nguyen-trai-1",
    ):
        assert expected in ids


def test_stations_are_in_hanoi_with_districts_and_plausible_ranges() -> None:
    for station in hanoi_fleet():
        assert 20.9 < station.lat < 21.15
        assert 105.68 < station.lon < 105.92
        assert station.district
        for sensor in station.sensors:
            assert sensor.interval_s in (60.0, 300.0)
            assert sensor.valid_min is not None
            assert sensor.valid_max is not None
            assert sensor.valid_min < sensor.valid_max


def test_air_and_buoy_stations_measure_the_full_sets() -> None:
    fleet = hanoi_fleet()
    air = next(s for s in fleet if s.domain is Domain.AIR)
    assert {s.quantity for s in air.sensors} == {
        Quantity.PM25,
        Quantity.PM10,
        Quantity.NO2,
        Quantity.SO2,
        Quantity.CO,
        Quantity.O3,
        Quantity.AIR_TEMPERATURE,
        Quantity.RELATIVE_HUMIDITY,
    }
    buoy = next(s for s in fleet if s.kind == "buoy")
    assert len(buoy.sensors) == 7
    assert {s.sensors[0].interval_s for s in fleet if s.kind == "buoy"} == {300.0}


def test_flood_sensors_name_an_existing_upstream_gauge_and_hotspot() -> None:
    fleet = hanoi_fleet()
    gauges = {s.station_id for s in fleet if s.kind == "rain_gauge"}
    for station in (s for s in fleet if s.kind == "flood_depth"):
        assert station.attributes["upstream_gauge"] in gauges
        assert station.attributes["hotspot"]


def test_traffic_detectors_are_on_corridors_and_motorbikes_dominate_the_mix() -> None:
    traffic = [s for s in hanoi_fleet() if s.kind == "traffic"]
    assert len({s.attributes["corridor"] for s in traffic}) >= 8
    with_motorbikes = [
        s for s in traffic if any(x.quantity is Quantity.FLOW_MOTORBIKE for x in s.sensors)
    ]
    # the elevated Ring 3 bans motorbikes; every other detector counts them
    assert len(with_motorbikes) == len(traffic) - 4


def test_registry_round_trips_through_the_wire() -> None:
    fleet = hanoi_fleet()
    assert decode_registry(encode_registry(fleet)) == fleet


def test_select_stations_by_pattern() -> None:
    chosen = select_stations(hanoi_fleet(), ["aq-*", "fd-thai-ha"])
    assert len(chosen) == 13
    assert select_stations(hanoi_fleet(), []) == hanoi_fleet()
