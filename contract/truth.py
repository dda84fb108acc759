"""Ground truth: the events and faults a simulator injects, published so detectors are scored.

Not a station topic: ground truth goes to ``<root>/_sim/truth`` (and to a JSON-lines file),
and only the evaluator reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import msgspec

from contract.errors import PayloadError
from contract.quantities import Quantity
from contract.topic import DEFAULT_ROOT, StationId

__all__ = ["TruthEvent", "decode_truth", "encode_truth", "truth_topic"]

_encoder: Final = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class TruthEvent:
    """An injected event or fault, published by the simulators so detectors can be scored.

    Args:
        event_id: unique id of this injection.
        scenario: the scenario that injected it.
        station_id: the affected station.
        kind: what happened, e.g. ``flood``, ``oxygen_crash``, ``pollution_episode``,
            ``traffic_incident``, ``stuck``, ``drift``, ``spike``, ``dropout``, ``offline``.
        category: ``event`` (something in the city) or ``fault`` (something in the sensor).
        start: tz-aware UTC start (simulated time).
        end: tz-aware UTC end (simulated time).
        quantities: the quantities it affects (empty: all of the station's).
        detail: free text.
    """

    event_id: str
    scenario: str
    station_id: StationId
    kind: str
    category: Literal["event", "fault"]
    start: datetime
    end: datetime
    quantities: tuple[Quantity, ...] = ()
    detail: str = ""


def truth_topic(root: str = DEFAULT_ROOT) -> str:
    """The topic ground-truth events are published on (not a station topic)."""
    return f"{root}/_sim/truth"


_truth_decoder: Final = msgspec.json.Decoder(TruthEvent)


def encode_truth(event: TruthEvent) -> bytes:
    """Encode a ground-truth event (one JSON object; a JSON-lines file holds many)."""
    return _encoder.encode(event)


def decode_truth(payload: bytes) -> TruthEvent:
    """Decode a ground-truth event.

    Raises:
        PayloadError: with reason ``schema`` when it does not match.
    """
    try:
        return _truth_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise PayloadError("schema", f"truth: {exc}") from None
