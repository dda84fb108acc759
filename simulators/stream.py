"""The outgoing message: what a simulated device (or the truth channel) sends, and when."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from contract import TruthEvent

__all__ = ["Outgoing", "OutgoingKind"]


class OutgoingKind(StrEnum):
    """What the publisher does with an :class:`Outgoing`."""

    TELEMETRY = "telemetry"
    """Publish on the station's telemetry topic from the station's client."""
    ONLINE = "online"
    """The device (re)connects and publishes its retained ``online`` status."""
    OFFLINE = "offline"
    """The device drops off the network; the broker publishes its last will (retained)."""
    TRUTH = "truth"
    """A ground-truth record: truth topic and truth file."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One time-stamped item of the simulated message stream.

    For ``OFFLINE`` the payload is the last-will payload the broker will publish, so an
    offline consumer of the stream sees exactly what a subscriber would.

    Args:
        sim_time: simulated time at which it leaves the device (tz-aware UTC).
        station_id: the station (for truth: the labelled station).
        kind: what it is.
        topic: MQTT topic.
        payload: MQTT payload.
        qos: MQTT QoS.
        retain: MQTT retain flag.
        truth: the decoded record, for ``TRUTH`` items.
    """

    sim_time: datetime
    station_id: str
    kind: OutgoingKind
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    truth: TruthEvent | None = None
