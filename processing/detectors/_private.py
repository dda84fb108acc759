"""Numerical helpers shared by the detectors (not public API)."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from processing.errors import DetectorConfigError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

# Mean absolute deviation of a normal variable is sigma * sqrt(2/pi); this turns it into sigma.
MEAN_ABS_TO_SIGMA: Final = 1.2533141373155001
_BIG: Final = 1e12


def squash(statistic: FloatArray, half: float) -> FloatArray:
    """Map a non-negative statistic to [0, 1): ``x / (x + half)``, 0.5 at ``x == half``.

    Negative and NaN statistics map to 0; infinities are clipped so the result stays finite.
    """
    x = np.nan_to_num(statistic, nan=0.0, posinf=_BIG, neginf=0.0)
    x = np.clip(x, 0.0, _BIG)
    return x / (x + half)


def sigmoid(x: FloatArray) -> FloatArray:
    """The logistic function, computed without overflow warnings."""
    z = np.clip(np.nan_to_num(x, nan=0.0), -60.0, 60.0)
    return 1.0 / (1.0 + np.exp(-z))


def ewma_rate(count: FloatArray, alpha: float) -> FloatArray:
    """Learning rate ``max(alpha, 1 / (count + 1))``: an exact running mean while warming up."""
    return np.maximum(alpha, 1.0 / (count + 1.0))


def scale_floor(level: FloatArray, min_scale: float, rel_scale: float) -> FloatArray:
    """The smallest scale a detector divides by: absolute floor or a fraction of the level."""
    return np.maximum(min_scale, rel_scale * np.abs(level))


def local_hour(times_s: FloatArray, utc_offset_s: float) -> FloatArray:
    """Fractional local hour of day in [0, 24)."""
    return np.mod((times_s + utc_offset_s) / 3600.0, 24.0)


def seasonal_bin(times_s: FloatArray, utc_offset_s: float, weekly: bool) -> IntArray:
    """Hour-of-day bin (0-23), plus 24 on Saturdays and Sundays when ``weekly``."""
    local_s = times_s + utc_offset_s
    hour = np.floor(np.mod(local_s / 3600.0, 24.0)).astype(np.intp)
    hour = np.clip(hour, 0, 23)
    if not weekly:
        return hour
    # 1970-01-01 was a Thursday: day 0 -> weekday 3 (Monday = 0).
    weekday = np.mod(np.floor(local_s / 86400.0) + 3.0, 7.0)
    return hour + 24 * (weekday >= 5).astype(np.intp)


def check_positive(name: str, value: float) -> None:
    """Raise :class:`DetectorConfigError` unless ``value`` is a finite number above 0."""
    if not (np.isfinite(value) and value > 0):
        msg = f"{name} must be a finite number > 0, got {value!r}"
        raise DetectorConfigError(msg)


def event_scores(
    raw: FloatArray, quiet: BoolArray, calm: float, alarm: float, held: BoolArray | None = None
) -> FloatArray:
    """A calibrated lane's scores after its event rules (one alarm per event).

    In a refractory period (``quiet``) a score is capped at ``calm``: no new alarm; an open
    event (``held``) stays flagged, scored at least ``alarm``.
    """
    capped: FloatArray = np.where(quiet, np.minimum(raw, calm), raw)
    if held is None:
        return capped
    scores: FloatArray = np.where(held, np.maximum(raw, alarm), capped)
    return scores


def check_seconds(name: str, value: float) -> None:
    """Raise :class:`DetectorConfigError` unless ``value`` is a finite number >= 0."""
    if not (np.isfinite(value) and value >= 0):
        msg = f"{name} must be a finite number >= 0, got {value!r}"
        raise DetectorConfigError(msg)


def check_alarm(calm: float, alarm: float) -> float:
    """``alarm``, checked against ``calm``: 0 <= calm < alarm <= 1 (a calibrated lane's pair)."""
    if not 0 <= calm < alarm <= 1:
        msg = f"need 0 <= calm < alarm <= 1, got calm={calm!r}, alarm={alarm!r}"
        raise DetectorConfigError(msg)
    return alarm


def check_fraction(name: str, value: float) -> None:
    """Raise :class:`DetectorConfigError` unless 0 < ``value`` <= 1."""
    if not (np.isfinite(value) and 0 < value <= 1):
        msg = f"{name} must be in (0, 1], got {value!r}"
        raise DetectorConfigError(msg)


def check_count(name: str, value: int, minimum: int = 0) -> None:
    """Raise :class:`DetectorConfigError` unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"{name} must be an integer >= {minimum}, got {value!r}"
        raise DetectorConfigError(msg)


def occurrence_rounds(slots: IntArray) -> list[IntArray]:
    """Split batch positions into rounds: round k holds the k-th reading of every slot.

    Positions keep their batch order inside a round.

    >>> [r.tolist() for r in occurrence_rounds(np.array([3, 1, 3, 3, 1]))]
    [[0, 1], [2, 4], [3]]
    """
    n = slots.shape[0]
    if n == 0:
        return []
    order = np.argsort(slots, kind="stable")
    ordered = slots[order]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    starts[1:] = ordered[1:] != ordered[:-1]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.empty(n, dtype=np.intp)
    rank[order] = np.arange(n) - group_start
    if rank.max() == 0:
        return [np.arange(n, dtype=np.intp)]
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.cumsum(np.bincount(rank))[:-1]
    return [part.astype(np.intp) for part in np.split(by_rank, bounds)]
