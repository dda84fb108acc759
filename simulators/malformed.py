"""Broken payloads, as real devices and bad firmware produce them (the ``malformed`` fault).

Each flavour breaks the wire contract differently, so ingest's quarantine sees a variety:
whole-message refusals (truncated or non-JSON bytes, wrong types, missing or naive time,
oversized) and per-reading refusals (null values, unknown quantity, wrong unit).
"""

import json
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from contract import MAX_PAYLOAD_BYTES, QUANTITIES, Quantity, encode_telemetry

__all__ = ["malformed_payload"]


def _body(
    station: str, stamp: datetime, readings: Sequence[tuple[Quantity, float]]
) -> dict[str, object]:
    return {
        "station": station,
        "time": stamp.isoformat().replace("+00:00", "Z"),
        "readings": [
            {"quantity": q.value, "value": v, "unit": QUANTITIES[q].unit} for q, v in readings
        ],
    }


def _dumps(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def _edit_one(body: dict[str, object], key: str, value: object, rng: np.random.Generator) -> bytes:
    readings = body["readings"]
    if isinstance(readings, list) and readings:
        readings[int(rng.integers(len(readings)))][key] = value
    return _dumps(body)


def malformed_payload(
    flavour: str,
    station: str,
    stamp: datetime,
    readings: Sequence[tuple[Quantity, float]],
    rng: np.random.Generator,
) -> bytes:
    """The bytes a broken device sends instead of a good sample.

    Raises:
        ValueError: for an unknown flavour.
    """
    good = encode_telemetry(station, stamp, readings)
    body = _body(station, stamp, readings)
    if flavour == "truncated":
        return good[: int(rng.integers(2, max(3, len(good) - 2)))]
    if flavour == "wrong_type":
        return _edit_one(body, "value", "12,5", rng)
    if flavour == "null_values":
        return _edit_one(body, "value", None, rng)
    if flavour == "nan_literal":
        return _edit_one(body, "value", float("nan"), rng)
    if flavour == "unknown_quantity":
        return _edit_one(body, "quantity", "pm1", rng)
    if flavour == "wrong_unit":
        return _edit_one(body, "unit", "ppm", rng)
    if flavour == "oversized":
        body["firmware_dump"] = "A" * (MAX_PAYLOAD_BYTES + 1024)
        return _dumps(body)
    if flavour == "not_json":
        return b"\xff\xfe" + bytes(rng.integers(0, 256, 24, dtype=np.uint8))
    if flavour == "missing_time":
        del body["time"]
        return _dumps(body)
    if flavour == "naive_time":
        body["time"] = stamp.replace(tzinfo=None).isoformat()
        return _dumps(body)
    msg = f"unknown malformed flavour {flavour!r}"
    raise ValueError(msg)
