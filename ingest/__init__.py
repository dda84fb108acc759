"""Ingest: MQTT telemetry -> typed readings -> TimescaleDB / PostgreSQL, losing nothing.

Contract: every message is decoded once (:mod:`contract`), validated against the station
registry, and either stored (idempotently, on a unique (time, sensor) key), counted as a
duplicate, or quarantined with its reason. MQTT acknowledgements go out only after the batch
holding the message has committed, in arrival order.
"""

from contract import Domain, PayloadError, Quantity, Reading, SensorId, StationId, Topic

__all__ = ["Domain", "PayloadError", "Quantity", "Reading", "SensorId", "StationId", "Topic"]
