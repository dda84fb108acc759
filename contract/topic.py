"""Topics and identities: where a station publishes, and how stations and sensors are named.

Topics::

    <root>/<domain>/<station_id>/telemetry   one JSON message per station per sample,
                                             or a SenML pack (RFC 8428) from a gateway
    <root>/<domain>/<station_id>/status      "online"/"offline" (retained; the last will)

The default root is ``hanoi/v1``. A sensor's one identity, everywhere in the system, is
``<station_id>.<quantity>`` (:data:`SensorId`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, NewType

from contract.errors import PayloadError
from contract.quantities import Domain, Quantity

__all__ = [
    "DEFAULT_ROOT",
    "STATION_ID_RE",
    "SensorId",
    "StationId",
    "Topic",
    "is_station_id",
    "sensor_id",
]

DEFAULT_ROOT: Final = "hanoi/v1"

StationId = NewType("StationId", str)
SensorId = NewType("SensorId", str)
"""``<station_id>.<quantity>``: one physical sensor, stable across the whole system."""

STATION_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
"""A station id: lower-case letters, digits and dashes, 2 to 63 characters (a topic level)."""
_ROOT_RE: Final = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


def is_station_id(text: str) -> bool:
    """True when ``text`` is a well-formed station id.

    >>> is_station_id("fd-thai-ha"), is_station_id("FD/x")
    (True, False)
    """
    return STATION_ID_RE.fullmatch(text) is not None


def sensor_id(station_id: str, quantity: Quantity) -> SensorId:
    """Return the system-wide id of one sensor (``<station>.<quantity>``)."""
    # (a StrEnum member is its value as a str: concatenation is 3x cheaper than formatting)
    return SensorId(station_id + "." + quantity)


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic ``<root>/<domain>/<station_id>/<kind>``.

    Args:
        domain: the station's domain.
        station_id: the station (or gateway) that published.
        kind: ``telemetry`` or ``status``.
        root: the topic root, ``hanoi/v1`` unless configured otherwise.
    """

    domain: Domain
    station_id: StationId
    kind: Literal["telemetry", "status"]
    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        if not STATION_ID_RE.fullmatch(self.station_id):
            msg = f"station id {self.station_id!r} must match {STATION_ID_RE.pattern}"
            raise PayloadError("bad_topic", msg)
        if not _ROOT_RE.fullmatch(self.root):
            msg = f"topic root {self.root!r} is not a plain topic path"
            raise PayloadError("bad_topic", msg)

    def __str__(self) -> str:
        return f"{self.root}/{self.domain.value}/{self.station_id}/{self.kind}"

    @classmethod
    def parse(cls, topic: str, root: str = DEFAULT_ROOT) -> Topic:
        """Parse a topic string published under ``root``.

        Raises:
            PayloadError: with reason ``bad_topic`` when it is not one of ours.
        """
        prefix = root + "/"
        if not topic.startswith(prefix):
            msg = f"topic {topic!r} is not under {root!r}"
            raise PayloadError("bad_topic", msg)
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 3 or parts[2] not in ("telemetry", "status"):
            msg = f"topic {topic!r} is not <root>/<domain>/<station>/(telemetry|status)"
            raise PayloadError("bad_topic", msg)
        try:
            domain = Domain(parts[0])
        except ValueError:
            msg = f"unknown domain {parts[0]!r} in topic {topic!r}"
            raise PayloadError("bad_topic", msg) from None
        kind: Literal["telemetry", "status"] = "telemetry" if parts[2] == "telemetry" else "status"
        return cls(domain, StationId(parts[1]), kind, root)

    @staticmethod
    def filter(kind: Literal["telemetry", "status"], root: str = DEFAULT_ROOT) -> str:
        """The subscription filter for every station's ``kind`` messages."""
        return f"{root}/+/+/{kind}"
