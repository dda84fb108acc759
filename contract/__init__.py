"""The contract: the vocabulary every stage of Hanoi IOC speaks, and nothing else.

Quantities and units, topics and identities, telemetry payloads (JSON and SenML) decoded
into :class:`Reading` values, device status and the one staleness rule, the one station and
sensor model with its registry document, the simulators' ground truth, broker URLs, and
time (UTC inside, Hanoi's zone for people). It is pure: no I/O, and it imports nothing of
ours, so every stage — simulators, ingest, processing, the ops API — stands on it.

Modules: :mod:`~contract.quantities`, :mod:`~contract.topic`, :mod:`~contract.reading`,
:mod:`~contract.payload`, :mod:`~contract.status`, :mod:`~contract.stations`,
:mod:`~contract.truth`, :mod:`~contract.broker`, :mod:`~contract.clock`,
:mod:`~contract.errors`.
"""

from contract.broker import BrokerAddress, parse_mqtt_url
from contract.clock import HANOI, HANOI_UTC_OFFSET_S, hanoi_time, local_iso, now_utc, utc_iso
from contract.errors import ContractError, PayloadError, RejectReason
from contract.payload import (
    MAX_PAYLOAD_BYTES,
    MAX_READINGS_PER_MESSAGE,
    SENML_PREFIX,
    TelemetryDecoder,
    decode_telemetry,
    decode_values,
    encode_senml,
    encode_telemetry,
    to_utc,
)
from contract.quantities import QUANTITIES, Domain, Quantity, QuantitySpec, display_unit
from contract.reading import Decoded, Reading, Rejection, Value, Values
from contract.stations import Registry, Sensor, Station, decode_registry, encode_registry
from contract.status import (
    DEFAULT_STALE_FACTOR,
    DEFAULT_STALE_MIN_S,
    MAX_REASON_CHARS,
    StaleRule,
    StationStateName,
    StatusMessage,
    decode_status,
    encode_status,
)
from contract.topic import (
    DEFAULT_ROOT,
    STATION_ID_RE,
    SensorId,
    StationId,
    Topic,
    is_station_id,
    sensor_id,
)
from contract.truth import TruthEvent, decode_truth, encode_truth, truth_topic

__all__ = [
    "DEFAULT_ROOT",
    "DEFAULT_STALE_FACTOR",
    "DEFAULT_STALE_MIN_S",
    "HANOI",
    "HANOI_UTC_OFFSET_S",
    "MAX_PAYLOAD_BYTES",
    "MAX_READINGS_PER_MESSAGE",
    "MAX_REASON_CHARS",
    "QUANTITIES",
    "SENML_PREFIX",
    "STATION_ID_RE",
    "BrokerAddress",
    "ContractError",
    "Decoded",
    "Domain",
    "PayloadError",
    "Quantity",
    "QuantitySpec",
    "Reading",
    "Registry",
    "RejectReason",
    "Rejection",
    "Sensor",
    "SensorId",
    "StaleRule",
    "Station",
    "StationId",
    "StationStateName",
    "StatusMessage",
    "TelemetryDecoder",
    "Topic",
    "TruthEvent",
    "Value",
    "Values",
    "decode_registry",
    "decode_status",
    "decode_telemetry",
    "decode_truth",
    "decode_values",
    "display_unit",
    "encode_registry",
    "encode_senml",
    "encode_status",
    "encode_telemetry",
    "encode_truth",
    "hanoi_time",
    "is_station_id",
    "local_iso",
    "now_utc",
    "parse_mqtt_url",
    "sensor_id",
    "to_utc",
    "truth_topic",
    "utc_iso",
]
