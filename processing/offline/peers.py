"""The detectors compared on the corpus, each as a stream scorer with its own fixed threshold.

Every peer scores a series strictly in order (each point before it is learnt) and returns
one score per point, higher = more anomalous; its ``threshold`` is the fixed decision rule it
is judged at. Ours run through :class:`processing.offline.backtest.Backtester`, exactly as
``hanoi-ioc backtest --csv`` runs them. The peers:

- ``windowed_gaussian``: |z| against the mean and standard deviation of the previous 1000
  points (NAB's "windowed Gaussian" baseline), flagged at |z| >= 4;
- ``river_gaussian``: river's ``GaussianScorer`` (a running Gaussian; score
  ``2 |CDF - 0.5|``), flagged at 0.9999 (|z| >= 3.9);
- ``river_gaussian_w``: the same over a window of the last 1000 points;
- ``river_sad``: river's ``StandardAbsoluteDeviation`` (|x - mean| / std), flagged at 4;
- ``river_hst``: river's ``HalfSpaceTrees`` on a min-max scaled value (river's recipe,
  seed 42), flagged at 0.9.

river is a development dependency (``pip install -e '.[dev]'``); it is imported when a river
peer is first used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from processing.detectors import DETECTORS
from processing.offline.backtest import Backtester

__all__ = ["PEERS", "Peer", "ours", "windowed_gaussian"]

FloatArray = npt.NDArray[np.float64]
Scorer = Callable[[FloatArray, FloatArray], FloatArray]
_WINDOW: Final = 1000


@dataclass(frozen=True, slots=True)
class Peer:
    """A detector under comparison.

    Args:
        name: its label in the report.
        score: ``(times_s, values) -> scores``, strictly streaming.
        threshold: its fixed decision threshold (score >= threshold flags).
        ours: one of this project's detectors.
    """

    name: str
    score: Scorer
    threshold: float
    ours: bool = False


def ours(detector: str, **params: float | int | bool | None) -> Scorer:
    """A project detector run through the backtest's :class:`Backtester`."""

    def score(times_s: FloatArray, values: FloatArray) -> FloatArray:
        scores, _ = Backtester(detector, params=params).score(times_s, values)
        return np.nan_to_num(scores, nan=0.0)

    return score


def windowed_gaussian(times_s: FloatArray, values: FloatArray) -> FloatArray:
    """|z| of each point against the previous :data:`_WINDOW` points (0 until 10 are seen)."""
    del times_s
    x = np.asarray(values, dtype=np.float64)
    c1 = np.concatenate([[0.0], np.cumsum(x)])
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    idx = np.arange(x.size)
    lo = np.maximum(0, idx - _WINDOW)
    count = idx - lo
    safe = np.maximum(count, 1)
    mean = (c1[idx] - c1[lo]) / safe
    var = np.maximum((c2[idx] - c2[lo]) / safe - mean * mean, 0.0)
    std = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(x - mean) / std
    z = np.where(std > 0, z, np.where(np.abs(x - mean) > 0, 1e6, 0.0))
    return np.where(count >= 10, z, 0.0)


def _river(make: Callable[[], Any], supervised: bool) -> Scorer:
    def score(times_s: FloatArray, values: FloatArray) -> FloatArray:
        del times_s
        model = make()
        out = np.empty(values.size)
        for i, y in enumerate(values.tolist()):
            x = None if supervised else {"x": y}
            try:
                s = model.score_one(x, y) if supervised else model.score_one(x)
            except (TypeError, ValueError, ZeroDivisionError):
                s = 0.0  # e.g. GaussianScorer on a constant stream (a complex sigma)
            if supervised:
                model.learn_one(x, y)
            else:
                model.learn_one(x)
            out[i] = s if isinstance(s, float | int) and math.isfinite(s) else 0.0
        return out

    return score


def _gaussian(window: int | None) -> Any:
    from river import anomaly  # a development dependency

    return anomaly.GaussianScorer(window_size=window, grace_period=100)  # type: ignore[no-untyped-call]


def _sad() -> Any:
    from river import anomaly, stats

    return anomaly.StandardAbsoluteDeviation(sub_stat=stats.Mean())


def _hst() -> Any:
    from river import anomaly, preprocessing

    return preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)


PEERS: Final[dict[str, Peer]] = {
    peer.name: peer
    for peer in (
        Peer("calibrated", ours("calibrated"), DETECTORS["calibrated"].default_threshold, True),
        Peer(
            "seasonal_mad", ours("seasonal_mad"), DETECTORS["seasonal_mad"].default_threshold, True
        ),
        Peer("windowed_gaussian", windowed_gaussian, 4.0),
        Peer("river_gaussian", _river(lambda: _gaussian(None), True), 0.9999),
        Peer("river_gaussian_w", _river(lambda: _gaussian(_WINDOW), True), 0.9999),
        Peer("river_sad", _river(_sad, True), 4.0),
        Peer("river_hst", _river(_hst, False), 0.9),
    )
}
"""Every detector the harness knows, by name."""
