"""Detector library: one detector per module, one contract for all.

Contract (see :mod:`processing.detectors.base`): per-sensor state lives in numpy arrays
indexed by slot; ``score_many``/``learn_many``/``process_many`` work on batches across
thousands of sensors and ``learn_one``/``score_one`` on one slot, with identical results.
Scores lie in [0, 1] (higher = more anomalous); a separate :class:`Thresholder` decides, at
each detector's documented ``default_threshold`` unless configured otherwise, and flagged
readings do not train the baseline. ``snapshot()``/:func:`restore` (or pickling) carry the
state across a restart. None of the detectors is stochastic, so none needs a seed;
:func:`make_detector` passes a ``seed`` parameter to detectors that declare
``stochastic = True`` and drops it for the others.

Registered detectors (name: what it catches, default threshold):

- ``calibrated``: readings rare for this stream, its scores calibrated tail probabilities
  (the backtest default), 0.35 (one reading in about 3000 as rare)
- ``seasonal_mad``: values unusual for the hour of day / day type, 0.5 (robust z >= 4)
- ``ewma``: sudden departures from the recent level, 0.5 (z >= 4)
- ``cusum``: small persistent shifts, 0.5 (CUSUM sum >= h = 8)
- ``rate_of_rise``: unusually fast rises (or falls), 0.5 (rate z >= 5)
- ``flatline``: stuck sensors, the time the value has not moved calibrated against the
  sensor's own runs, 0.5 (one in about 100 000 as long)
- ``dropout``: missing readings, the gap calibrated against the sensor's own gaps, 0.4 (one
  in about 10 000 as long)
- ``spike``: isolated spikes, their distance from the recent median calibrated like
  ``calibrated``'s scores, 0.4 (one reading in about 10 000 as far)
- ``spatial``: drift from neighbours, accumulated evidence calibrated against the sensor's
  own, 0.5 (one in about 100 000 as strong)
- ``oxygen_risk``: DO heading below 2 mg/L, 0.5

>>> d = make_detector("ewma", alpha=0.1)
>>> restore(d.snapshot()).params == d.params
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from processing.detectors.base import (
    STATE_VERSION,
    Detector,
    DetectorSnapshot,
    ParamValue,
    SeriesScorer,
    Thresholder,
    VectorDetector,
    occurrence_rounds,
)
from processing.detectors.calibrated import CalibratedDetector
from processing.detectors.cusum import CusumDetector
from processing.detectors.dropout import DropoutDetector
from processing.detectors.ewma import EwmaDetector
from processing.detectors.flatline import FlatlineDetector
from processing.detectors.oxygen import OxygenRiskDetector
from processing.detectors.rate import RateOfRiseDetector
from processing.detectors.seasonal import SeasonalMadDetector
from processing.detectors.spatial import SpatialDetector
from processing.detectors.spike import SpikeDetector
from processing.errors import DetectorConfigError, SnapshotError

__all__ = [
    "DETECTORS",
    "STATE_VERSION",
    "CalibratedDetector",
    "CusumDetector",
    "Detector",
    "DetectorSnapshot",
    "DropoutDetector",
    "EwmaDetector",
    "FlatlineDetector",
    "OxygenRiskDetector",
    "ParamValue",
    "RateOfRiseDetector",
    "SeasonalMadDetector",
    "SeriesScorer",
    "SpatialDetector",
    "SpikeDetector",
    "Thresholder",
    "VectorDetector",
    "create_detector",
    "default_thresholder",
    "make_detector",
    "occurrence_rounds",
    "restore",
]

DETECTORS: Final[Mapping[str, type[VectorDetector]]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (
            CalibratedDetector,
            SeasonalMadDetector,
            EwmaDetector,
            CusumDetector,
            RateOfRiseDetector,
            FlatlineDetector,
            DropoutDetector,
            SpikeDetector,
            SpatialDetector,
            OxygenRiskDetector,
        )
    }
)
"""Registry: detector name -> class (a constant mapping; construct with :func:`make_detector`)."""


def make_detector(name: str, /, **params: ParamValue) -> VectorDetector:
    """Build a registered detector from its name and keyword parameters.

    A ``seed`` parameter is passed to stochastic detectors and ignored by the others (all
    current detectors are deterministic).

    Raises:
        DetectorConfigError: for an unknown name or invalid parameters.
    """
    return create_detector(name, params)


def create_detector(name: str, params: Mapping[str, ParamValue]) -> VectorDetector:
    """Like :func:`make_detector`, with the parameters as a mapping (e.g. from settings).

    Raises:
        DetectorConfigError: for an unknown name or invalid parameters.
    """
    cls = DETECTORS.get(name)
    if cls is None:
        msg = f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}"
        raise DetectorConfigError(msg)
    if "seed" in params and not getattr(cls, "stochastic", False):
        params = {key: value for key, value in params.items() if key != "seed"}
    factory: Callable[..., VectorDetector] = cls
    try:
        return factory(**params)
    except TypeError as exc:
        msg = f"invalid parameters for {name!r}: {exc}"
        raise DetectorConfigError(msg) from None


def restore(snapshot: DetectorSnapshot) -> VectorDetector:
    """Rebuild a detector, parameters and state, from :meth:`VectorDetector.snapshot`.

    Raises:
        SnapshotError: when the snapshot is of an unknown detector, version or shape.
    """
    if snapshot.detector not in DETECTORS:
        msg = f"snapshot of unknown detector {snapshot.detector!r}"
        raise SnapshotError(msg)
    try:
        detector = create_detector(snapshot.detector, snapshot.params)
    except DetectorConfigError as exc:
        raise SnapshotError(str(exc)) from exc
    detector.load_snapshot(snapshot)
    return detector


def default_thresholder(name: str, *, protect: bool = True) -> Thresholder:
    """The documented default thresholder of a registered detector."""
    if name not in DETECTORS:
        msg = f"unknown detector {name!r}"
        raise DetectorConfigError(msg)
    return Thresholder(DETECTORS[name].default_threshold, protect)
