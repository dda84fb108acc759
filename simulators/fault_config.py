"""Fault configuration: which faults exist, how often they happen, scripted placements.

Rates (``FaultRates``):

- ``stuck_per_day``, ``drift_per_day``, ``offline_per_day``, ``clock_skew_per_day``:
  episodes per station per simulated day (Poisson arrivals, random lengths);
- ``spike_rate``: share of readings replaced by a spike;
- ``dropout_rate``: share of messages lost, in bursts of ~3;
- ``duplicate_rate``, ``out_of_order_rate``, ``malformed_rate``: share of messages sent
  twice, held back past later ones, or replaced by broken bytes.
"""

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Self

from contract import Quantity

__all__ = ["FaultKind", "FaultRates", "ScriptedFault"]


class FaultKind(StrEnum):
    """Every injectable fault (the truth label's ``kind``)."""

    STUCK = "stuck"
    DRIFT = "drift"
    SPIKE = "spike"
    DROPOUT = "dropout"
    OFFLINE = "offline"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    CLOCK_SKEW = "clock_skew"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class FaultRates:
    """How often each fault happens (see the module docstring for units)."""

    stuck_per_day: float = 0.0
    drift_per_day: float = 0.0
    spike_rate: float = 0.0
    dropout_rate: float = 0.0
    offline_per_day: float = 0.0
    duplicate_rate: float = 0.0
    out_of_order_rate: float = 0.0
    clock_skew_per_day: float = 0.0
    malformed_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                msg = f"fault rate {name} must be a finite number >= 0, not {value!r}"
                raise ValueError(msg)
        if (
            self.dropout_rate >= 1
            or max(
                self.spike_rate, self.duplicate_rate, self.out_of_order_rate, self.malformed_rate
            )
            > 1
        ):
            msg = "per-message fault rates are shares: spike/duplicate/... <= 1, dropout < 1"
            raise ValueError(msg)

    def with_overrides(self, **overrides: float | None) -> Self:
        """A copy with the given (non-None) rates replaced."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def per_day(self, kind: FaultKind) -> float:
        """Episodes per station-day of an episodic fault."""
        return float(getattr(self, f"{kind.value}_per_day"))


@dataclass(frozen=True, slots=True)
class ScriptedFault:
    """A fault placed by the scenario at a fixed time (relative to the run's start).

    Args:
        kind: stuck, drift, offline or clock_skew.
        station_id: the station.
        start_s: start offset.
        duration_s: length.
        quantity: the affected quantity (stuck/drift; default: the first one).
        magnitude: drift at the end (canonical units) or clock offset (s).
    """

    kind: FaultKind
    station_id: str
    start_s: float
    duration_s: float
    quantity: Quantity | None = None
    magnitude: float | None = None
