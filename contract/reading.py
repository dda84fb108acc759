"""Readings: the typed values every stage passes down the pipeline.

A :class:`Reading` is decoded exactly once from the wire (:mod:`contract.payload`) and then
travels as it is. (Values on the hot path are msgspec ``Struct`` types: immutable and typed
like a frozen dataclass, but about ten times cheaper to build.)
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from contract.errors import RejectReason
from contract.quantities import QUANTITIES, Quantity
from contract.topic import SensorId, StationId

__all__ = ["Decoded", "RawItem", "Reading", "Rejection", "Value", "Values"]


class Reading(msgspec.Struct, frozen=True, gc=False):
    """One measured value, decoded and converted to the canonical unit.

    (Values on the hot path are msgspec ``Struct`` types: immutable and typed like a frozen
    dataclass, but about ten times cheaper to build.)

    Args:
        station_id: the reporting station.
        quantity: what was measured.
        value: the value in ``QUANTITIES[quantity].unit``.
        measured_at: tz-aware UTC time of the measurement (device clock).
        received_at: tz-aware UTC time the message reached us.
    """

    station_id: StationId
    quantity: Quantity
    value: float
    measured_at: datetime
    received_at: datetime

    @property
    def sensor_id(self) -> SensorId:
        """The sensor this reading belongs to."""
        return SensorId(self.station_id + "." + self.quantity)  # hot: no call to sensor_id()

    @property
    def unit(self) -> str:
        """The canonical unit of :attr:`value`."""
        return QUANTITIES[self.quantity].unit


class Rejection(msgspec.Struct, frozen=True, gc=False):
    """One reading (or a whole message) refused, with its reason."""

    reason: RejectReason
    detail: str
    station_id: str | None = None
    quantity: str | None = None


class Decoded(msgspec.Struct, frozen=True, gc=False):
    """The result of decoding one telemetry message: accepted readings and refusals."""

    readings: tuple[Reading, ...]
    rejections: tuple[Rejection, ...] = ()


RawItem = tuple[str, str, float | None, str, datetime, float]
"""A reading as sent: (station, quantity name, value, unit, time, time key for duplicates)."""

Value = tuple[str, Quantity, float, datetime]
"""A reading that passed the contract, as a plain tuple: (station, quantity, value, time)."""


class Values(msgspec.Struct, frozen=True, gc=False):
    """One telemetry message decoded into plain value tuples (the ingest hot path's form).

    :func:`decode_telemetry` gives the same as :class:`Reading` values; this form skips
    building an object per reading where the caller only needs the numbers.
    """

    values: list[Value]
    rejections: list[Rejection]
