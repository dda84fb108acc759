"""Streaming tail calibration: the rarity of a statistic against its own history.

A statistic ``s >= 0`` (larger = stranger) is calibrated peaks-over-threshold style, in O(1)
memory: ``u`` tracks its ``1 - q`` quantile (multiplicative stochastic-approximation steps,
so it finds the right scale whatever the stream's units), the exceedance rate of ``u`` is
counted with exponential forgetting, and the excesses above ``u`` fit a generalised Pareto
tail by the moment estimator of Dekkers, Einmahl and de Haan (1989) on the log-excesses
``log(s / u)``: their first two moments ``M1``, ``M2`` give the shape
``xi = M1 + 1 - 1 / (2 (1 - M1**2 / M2))`` (heavy tails: ``xi > 0``; exponential-type, such as
Gaussian noise: about 0) and the scale ``sigma = u * M1 * (1 - min(xi_minus, 0))``. The tail
probability of a new value is

    p(s) = rate * (1 + xi (s - u) / sigma) ** (-1 / xi)    for s > u,   1 otherwise,

(``exp(-(s - u) / sigma)`` as ``xi`` -> 0), so a record far beyond anything seen still gets a
finite, shrinking rarity. ``xi`` is never taken below 0 (no finite end point is assumed), the
moments are shrunk towards a heavy prior (Pareto, index ``H0``) while few excesses are known,
and ``M1`` never falls below ``H_MIN`` (discrete values put point masses in the tail). When most
values sit on a point mass (a mostly-zero count), ``u`` rests on its floor and ``rate`` is the
measured share of values above it.

Each function has a scalar form (the single-stream loop) and an array form (many slots);
both do the same float operations in the same order.

>>> cfg, t = TailConfig(), tail_init(2.0)
>>> for k in range(3000):
...     t = tail_learn(t, 1.0 + (k % 7) / 3.0, cfg)
>>> tail_p(t, 2.5, cfg) > 1e-2 > tail_p(t, 30.0, cfg) > 0.0
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from processing.detectors._private import FloatArray

__all__ = [
    "H0",
    "H2_RATIO",
    "H_MIN",
    "TAIL_FIELDS",
    "TailConfig",
    "TailState",
    "gpd_shape",
    "tail_init",
    "tail_learn",
    "tail_learn_many",
    "tail_p",
    "tail_p_many",
]

H0: Final = 0.25
"""Prior mean log-excess (with :data:`H2_RATIO`: a shape of about 0.12, a mildly heavy tail)."""
H2_RATIO: Final = 1.8
"""Prior second moment of the log-excess over the squared first (2 for a Pareto tail)."""
H_MIN: Final = 0.1
"""Smallest mean log-excess: a tail never falls faster than this scale allows."""
N_PRIOR: Final = 4.0
"""Pseudo-excesses behind the prior."""
_RATE_PRIOR: Final = 50.0
"""Pseudo-points behind the exceedance rate (``q`` each)."""
_MAX_LOG_EXCESS: Final = 4.6
"""One excess moves ``H`` by at most log(100) / n: bounded influence of a huge outlier."""
_U_MIN: Final = 1e-6
_STEP_FAST: Final = 0.02
_STEP_SLOW: Final = 0.002
_SETTLED: Final = 10.0
_XI_EXP: Final = 1e-6
_RATIO_MIN: Final = 1.5
"""Least ``M2 / M1**2``: a point mass in the tail (ratio 1) must not read as an endless scale."""

TAIL_FIELDS: Final = ("u", "exc", "tot", "h", "h2", "ne")
"""Names of the six numbers of a tail state, in order."""

TailState = tuple[float, float, float, float, float, float]
"""``(u, exc, tot, h, h2, ne)``: threshold, forgotten counts of excesses and of points, the
first two moments of the log-excess and the number of excesses behind them (capped)."""


@dataclass(frozen=True, slots=True)
class TailConfig:
    """How a tail is calibrated.

    Args:
        q: share of values above the threshold ``u`` (the tail fitted).
        memory: points the counts remember (exponential forgetting).
    """

    q: float = 0.02
    memory: float = 10_000.0
    keep: float = field(init=False)
    cap: float = field(init=False)
    factors: tuple[float, float, float, float] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep", 1.0 - 1.0 / self.memory)
        object.__setattr__(self, "cap", max(1.0, self.q * self.memory))
        up = (1.0 - self.q) / self.q
        factors = (
            math.exp(_STEP_FAST * up), math.exp(-_STEP_FAST),
            math.exp(_STEP_SLOW * up), math.exp(-_STEP_SLOW),
        )  # fmt: skip
        object.__setattr__(self, "factors", factors)


def tail_init(u0: float) -> TailState:
    """A fresh tail state whose threshold starts at ``u0``."""
    return (u0, 0.0, 0.0, H0, H2_RATIO * H0 * H0, 0.0)


def gpd_shape(h: float, h2: float, ne: float) -> tuple[float, float]:
    """Shape ``xi >= 0`` and scale per unit of ``u``, from the (shrunk) log-excess moments."""
    m1 = max(H_MIN, (ne * h + N_PRIOR * H0) / (ne + N_PRIOR))
    m2 = max(_RATIO_MIN * m1 * m1, (ne * h2 + N_PRIOR * H2_RATIO * H0 * H0) / (ne + N_PRIOR))
    minus = 1.0 - 0.5 / (1.0 - m1 * m1 / m2)
    return max(m1 + minus, 0.0), m1 * (1.0 - min(minus, 0.0))


def tail_p(state: TailState, s: float, cfg: TailConfig) -> float:
    """Tail probability of ``s`` (1 at or below the threshold)."""
    u, exc, tot, h, h2, ne = state
    if not s > u:
        return 1.0
    rate = (exc + cfg.q * _RATE_PRIOR) / (tot + _RATE_PRIOR)
    xi, scale = gpd_shape(h, h2, ne)
    z = (s - u) / (u * scale)
    if xi < _XI_EXP:
        return rate * math.exp(-z)
    tail: float = (1.0 + xi * z) ** (-1.0 / xi)
    return rate * tail


def tail_learn(state: TailState, s: float, cfg: TailConfig) -> TailState:
    """The state after one more value ``s``."""
    u, exc, tot, h, h2, ne = state
    above = s > u
    tot = tot * cfg.keep + 1.0
    exc = exc * cfg.keep + (1.0 if above else 0.0)
    if above:
        ne = min(ne + 1.0, cfg.cap)
        excess = min(math.log(s / u), _MAX_LOG_EXCESS)
        h = h + (excess - h) / ne
        h2 = h2 + (excess * excess - h2) / ne
    up, down = cfg.factors[:2] if ne < _SETTLED else cfg.factors[2:]
    u = u * (up if above else down)
    return (max(u, _U_MIN), exc, tot, h, h2, ne)


def tail_p_many(state: dict[str, FloatArray], s: FloatArray, cfg: TailConfig) -> FloatArray:
    """:func:`tail_p` for arrays; ``state`` maps :data:`TAIL_FIELDS` to arrays."""
    u, exc, tot, h, h2, ne = (state[key] for key in TAIL_FIELDS)
    rate = (exc + cfg.q * _RATE_PRIOR) / (tot + _RATE_PRIOR)
    m1 = np.maximum(H_MIN, (ne * h + N_PRIOR * H0) / (ne + N_PRIOR))
    m2 = np.maximum(_RATIO_MIN * m1 * m1, (ne * h2 + N_PRIOR * H2_RATIO * H0 * H0) / (ne + N_PRIOR))
    minus = 1.0 - 0.5 / (1.0 - m1 * m1 / m2)
    xi = np.maximum(m1 + minus, 0.0)
    scale = m1 * (1.0 - np.minimum(minus, 0.0))
    above = s > u
    z = (s - u) / (u * scale)
    light = xi < _XI_EXP
    safe_xi = np.where(light, 1.0, xi)
    heavy_p = np.maximum(1.0 + safe_xi * np.where(above, z, 0.0), 1.0) ** (-1.0 / safe_xi)
    tail = np.where(light, np.exp(-np.where(above, z, 0.0)), heavy_p)
    return np.where(above, rate * tail, 1.0)


def tail_learn_many(
    state: dict[str, FloatArray], s: FloatArray, cfg: TailConfig
) -> dict[str, FloatArray]:
    """:func:`tail_learn` for arrays; ``state`` maps :data:`TAIL_FIELDS` to arrays."""
    u, exc, tot, h, h2, ne = (state[key] for key in TAIL_FIELDS)
    above = s > u
    tot = tot * cfg.keep + 1.0
    exc = exc * cfg.keep + np.where(above, 1.0, 0.0)
    ne = np.where(above, np.minimum(ne + 1.0, cfg.cap), ne)
    excess = np.minimum(np.log(np.where(above, s / u, 1.0)), _MAX_LOG_EXCESS)
    safe_ne = np.where(above, ne, 1.0)
    h = np.where(above, h + (excess - h) / safe_ne, h)
    h2 = np.where(above, h2 + (excess * excess - h2) / safe_ne, h2)
    settled = ne >= _SETTLED
    up = np.where(settled, cfg.factors[2], cfg.factors[0])
    down = np.where(settled, cfg.factors[3], cfg.factors[1])
    u = u * np.where(above, up, down)
    return {"u": np.maximum(u, _U_MIN), "exc": exc, "tot": tot, "h": h, "h2": h2, "ne": ne}
