"""Stations and sensors: the one model of the fleet, and the registry every stage reads.

A :class:`Station` (with its :class:`Sensor` s) is what the registry document describes, what
the database stores, what validation checks against and what processing and the ops API
name in alerts. A sensor's identity is ``<station_id>.<quantity>`` (:func:`sensor_id`); the
database's integer key of a sensor is a storage detail that :class:`Registry` carries as
:attr:`Registry.keys` for the writer, not a second identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

import msgspec

from contract.errors import PayloadError
from contract.quantities import QUANTITIES, Domain, Quantity
from contract.topic import STATION_ID_RE, SensorId, StationId, sensor_id

__all__ = ["Registry", "Sensor", "Station", "decode_registry", "encode_registry"]

AttributeValue = str | float | int | bool


@dataclass(frozen=True, slots=True)
class Sensor:
    """One sensor of a station as registered.

    Args:
        quantity: what it measures (unit: the quantity's canonical unit).
        interval_s: nominal reporting interval in seconds.
        valid_min: lower bound of the plausible range; outside it readings are flagged.
        valid_max: upper bound of the plausible range.
    """

    quantity: Quantity
    interval_s: float
    valid_min: float | None = None
    valid_max: float | None = None

    def is_plausible(self, value: float) -> bool:
        """False when the value is outside the sensor's plausible range.

        >>> Sensor(Quantity.PH, 60.0, 5.0, 10.0).is_plausible(11.0)
        False
        """
        if self.valid_min is not None and value < self.valid_min:
            return False
        return self.valid_max is None or value <= self.valid_max


@dataclass(frozen=True, slots=True)
class Station:
    """A station (or a gateway's station) of the fleet.

    Args:
        station_id: stable id, also the topic level.
        domain: air, water, flood or traffic.
        name: display name (Vietnamese place name).
        district: Hanoi district (quận/huyện).
        lat: WGS84 latitude.
        lon: WGS84 longitude.
        kind: station type (e.g. ``traffic``, ``buoy``, ``rain_gauge``, ``flood_depth``).
        sensors: its sensors.
        attributes: free metadata (e.g. upstream rain gauge of a flood sensor). One has a
            meaning for the trust boundary: ``gateway`` names the gateway (an id of the
            station-id form, with broker credentials of its own) that may publish for this
            station — on the station's topics, or in SenML packs on its own topic.

    Raises:
        ValueError: for a malformed id or gateway, or a sensor of another domain.
    """

    station_id: StationId
    domain: Domain
    name: str
    district: str
    lat: float
    lon: float
    kind: str
    sensors: tuple[Sensor, ...] = ()
    attributes: dict[str, AttributeValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not STATION_ID_RE.fullmatch(self.station_id):
            msg = f"station id {self.station_id!r} must match {STATION_ID_RE.pattern}"
            raise ValueError(msg)
        gateway = self.attributes.get("gateway")
        if gateway is not None and not (
            isinstance(gateway, str) and STATION_ID_RE.fullmatch(gateway)
        ):
            msg = f"{self.station_id}: gateway {gateway!r} must match {STATION_ID_RE.pattern}"
            raise ValueError(msg)
        if gateway == self.station_id:
            msg = f"{self.station_id}: a station is not its own gateway"
            raise ValueError(msg)
        for sensor in self.sensors:
            if QUANTITIES[sensor.quantity].domain is not self.domain:
                msg = f"{self.station_id}: {sensor.quantity} is not a {self.domain} quantity"
                raise ValueError(msg)

    @property
    def gateway(self) -> str | None:
        """The gateway registered to publish for this station, if any."""
        gateway = self.attributes.get("gateway")
        return gateway if isinstance(gateway, str) else None

    def sensor(self, quantity: Quantity) -> Sensor | None:
        """Its sensor of ``quantity``, if it has one."""
        for s in self.sensors:
            if s.quantity is quantity:
                return s
        return None

    def sensor_ids(self) -> list[SensorId]:
        """The ids of its sensors."""
        return [sensor_id(self.station_id, s.quantity) for s in self.sensors]


@dataclass(frozen=True, slots=True)
class Registry:
    """An immutable view of the registry, swapped whole on refresh.

    Args:
        stations: every registered station, by id.
        keys: the database's integer key of each sensor (the ``readings`` rows carry it
            instead of the text id); empty where nothing is stored.

    >>> reg = Registry.of([Station(StationId("fd-a"), Domain.FLOOD, "A", "Đống Đa", 21.0,
    ...                            105.8, "flood_depth", (Sensor(Quantity.WATER_DEPTH, 60.0),))])
    >>> reg.sensor("fd-a", Quantity.WATER_DEPTH).interval_s
    60.0
    """

    stations: Mapping[str, Station]
    keys: Mapping[tuple[str, Quantity], int] = field(default_factory=dict)
    sensors: Mapping[tuple[str, Quantity], Sensor] = field(init=False)

    def __post_init__(self) -> None:
        sensors = {
            (station_id, s.quantity): s
            for station_id, station in self.stations.items()
            for s in station.sensors
        }
        object.__setattr__(self, "sensors", sensors)

    @classmethod
    def of(
        cls, stations: Iterable[Station], keys: Mapping[tuple[str, Quantity], int] | None = None
    ) -> Registry:
        """A registry of ``stations`` (and their sensors' storage keys, if stored)."""
        return cls({s.station_id: s for s in stations}, dict(keys or {}))

    def sensor(self, station_id: str, quantity: Quantity) -> Sensor | None:
        """The registered sensor, or None."""
        return self.sensors.get((station_id, quantity))


_encoder: Final = msgspec.json.Encoder()
_registry_decoder: Final = msgspec.json.Decoder(list[Station])


def encode_registry(stations: Iterable[Station]) -> bytes:
    """Encode stations as the JSON registry document."""
    return msgspec.json.format(_encoder.encode(list(stations)), indent=1)


def decode_registry(document: bytes) -> list[Station]:
    """Decode a registry document written by :func:`encode_registry`.

    Raises:
        PayloadError: with reason ``schema`` when it does not match.
    """
    try:
        return _registry_decoder.decode(document)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise PayloadError("schema", f"registry: {exc}") from None
