"""Streaming tail calibration: the rarity of a statistic against its own history.

A statistic ``s >= 0`` (larger = stranger) is calibrated peaks-over-threshold style, in O(1)
memory. The threshold is ``u = m + spread * d``, with ``m`` and ``d`` running means of the
statistic and of its absolute deviation (so it finds the right scale whatever the stream's
units, and an autocorrelated statistic does not make it jump; each value counts for at most
four thresholds, so one outlier moves it a bounded amount). The share of values above ``u``
is counted with exponential forgetting, and the excesses fit a generalised Pareto tail by the
moment estimator of Dekkers, Einmahl and de Haan (1989) on the log-excesses ``log(s / u)``:
their first two moments ``M1``, ``M2`` give the shape ``xi = M1 + 1 - 1 / (2 (1 - M1**2 / M2))``
(heavy tails: ``xi > 0``; exponential-type, such as Gaussian noise: about 0) and the scale
``sigma = u * M1 * (1 - min(xi_minus, 0))``. The tail probability of a new value is

    p(s) = rate * (1 + xi (s - u) / sigma) ** (-1 / xi)    for s > u,   1 otherwise,

(``exp(-(s - u) / sigma)`` as ``xi`` -> 0), so a record far beyond anything seen still gets a
finite, shrinking rarity. ``xi`` is never taken below 0 (no finite end point is assumed),
shape and scale are shrunk towards a heavy prior while few excesses are known, and ``M1``
never falls below ``H_MIN`` (discrete values put point masses in the tail). When most values
sit on a point mass (a mostly-zero count), ``u`` sits just above it and ``rate`` is the
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

from processing.detectors._private import BoolArray, FloatArray, IntArray, check_positive
from processing.errors import DetectorConfigError

__all__ = [
    "H_MIN",
    "SCALE0",
    "SETTLED",
    "TAIL_FIELDS",
    "XI0",
    "TailConfig",
    "TailState",
    "gpd_shape",
    "learn_tails",
    "min_tail_p",
    "rarity_many",
    "tail_columns",
    "tail_init",
    "tail_learn",
    "tail_learn_many",
    "tail_p",
    "tail_p_many",
    "tail_rarity_rows",
    "tail_settled",
    "tail_teach_ordinary",
    "tail_teach_rows",
    "tail_zeros",
    "threshold",
]

XI0: Final = 0.25
"""Prior shape: a heavy tail (unknown streams are judged leniently)."""
SCALE0: Final = 0.3
"""Prior scale of the excesses, per unit of the threshold."""
H_MIN: Final = 0.1
"""Smallest mean log-excess: a tail never falls faster than this scale allows."""
N_PRIOR: Final = 20.0
"""Pseudo-excesses behind the prior."""
SETTLED: Final = 10.0
"""Excesses kept when the stream's model changes (its residuals change nature)."""
_RATE_Q: Final = 0.05
_RATE_PRIOR: Final = 50.0
"""Pseudo-points behind the exceedance rate (``_RATE_Q`` of them above ``u``)."""
_YOUNG: Final = 200.0
"""A young calibration's probabilities are inflated by ``1 + _YOUNG / points``: its tail is a
guess (x5 after 50 points, x1.4 after 500)."""
_LEVEL_PRIOR: Final = 100.0
"""Pseudo-points behind the starting threshold: a slow statistic needs a few hundred points
before its own threshold can be trusted."""
_MAX_LOG_EXCESS: Final = 4.6
"""One excess moves the moments by at most log(100) / n: bounded influence."""
_CLIP_U: Final = 4.0
_U_MIN: Final = 1e-6
_XI_EXP: Final = 1e-6
_LOG_P_FLOOR: Final = -10.0
"""Rarities are told apart down to one in 10**10; rarer is as rare."""
_RATIO_MIN: Final = 1.5
"""Least ``M2 / M1**2``: a point mass in the tail (ratio 1) must not read as an endless scale."""

TAIL_FIELDS: Final = ("m", "d", "exc", "tot", "h", "h2", "ne")
"""Names of the seven numbers of a tail state, in order."""

TailState = tuple[float, float, float, float, float, float, float]
"""``(m, d, exc, tot, h, h2, ne)``: running mean and absolute deviation of the statistic,
forgotten counts of excesses and of points, the first two moments of the log-excess and the
number of excesses behind them (capped)."""


@dataclass(frozen=True, slots=True)
class TailConfig:
    """How a tail is calibrated.

    Args:
        spread: the threshold in mean absolute deviations above the mean.
        memory: points the exceedance counts remember (exponential forgetting).
        level_memory: points the threshold's mean and deviation remember.
    """

    spread: float = 2.5
    memory: float = 10_000.0
    level_memory: float = 500.0
    keep: float = field(init=False)
    cap: float = field(init=False)

    def __post_init__(self) -> None:
        check_positive("tail_spread", self.spread)
        for name, points in (("memory", self.memory), ("level_memory", self.level_memory)):
            if not (np.isfinite(points) and points >= 2):
                msg = f"{name} must be a number >= 2, got {points!r}"
                raise DetectorConfigError(msg)
        object.__setattr__(self, "keep", 1.0 - 1.0 / self.memory)
        object.__setattr__(self, "cap", max(1.0, _RATE_Q * self.memory))


def tail_init(u0: float, spread: float = 2.5) -> TailState:
    """A fresh tail state whose threshold starts at ``u0``."""
    return (0.5 * u0, 0.5 * u0 / spread, 0.0, 0.0, 0.25, 0.125, 0.0)


def threshold(m: float, d: float, spread: float, floor: float = _U_MIN) -> float:
    """The calibration threshold ``u`` (never under ``floor``: values below it are ordinary)."""
    return max(m + spread * d, floor, _U_MIN)


def gpd_shape(h: float, h2: float, ne: float, heavy: bool = True) -> tuple[float, float]:
    """Shape ``xi >= 0`` and scale per unit of ``u``, shrunk towards the prior's by weight.

    ``heavy=False`` shrinks the shape towards 0 (an exponential tail) instead of
    :data:`XI0`: averages of clipped values have light tails, and a shape estimated from a few
    clusters of excesses is mostly noise.
    """
    m1 = max(H_MIN, h)
    m2 = max(_RATIO_MIN * m1 * m1, h2)
    minus = 1.0 - 0.5 / (1.0 - m1 * m1 / m2)
    xi = max(m1 + minus, 0.0)
    scale = m1 * (1.0 - min(minus, 0.0))
    weight = ne / (ne + N_PRIOR)
    prior = XI0 if heavy else 0.0
    return prior + weight * (xi - prior), SCALE0 + weight * (scale - SCALE0)


def tail_p(
    state: TailState, s: float, cfg: TailConfig, heavy: bool = True, floor: float = _U_MIN
) -> float:
    """Tail probability of ``s`` (1 at or below the threshold); see :func:`gpd_shape`."""
    m, d, exc, tot, h, h2, ne = state
    u = threshold(m, d, cfg.spread, floor)
    if not s > u:
        return 1.0
    rate = (exc + _RATE_Q * _RATE_PRIOR) / (tot + _RATE_PRIOR) * (1.0 + _YOUNG / (tot + 1.0))
    xi, scale = gpd_shape(h, h2, ne, heavy)
    z = (s - u) / (u * scale)
    tail: float = math.exp(-z) if xi < _XI_EXP else (1.0 + xi * z) ** (-1.0 / xi)
    return min(1.0, rate * tail)


def tail_learn(state: TailState, s: float, cfg: TailConfig, floor: float = _U_MIN) -> TailState:
    """The state after one more value ``s``."""
    m, d, exc, tot, h, h2, ne = state
    u = threshold(m, d, cfg.spread, floor)
    above = s > u
    tot = tot * cfg.keep + 1.0
    exc = exc * cfg.keep + (1.0 if above else 0.0)
    if above:
        ne = min(ne + 1.0, cfg.cap)
        excess = min(math.log(s / u), _MAX_LOG_EXCESS)
        h = h + (excess - h) / ne
        h2 = h2 + (excess * excess - h2) / ne
    rate = max(1.0 / cfg.level_memory, 1.0 / (tot + _LEVEL_PRIOR))
    clipped = min(s, _CLIP_U * u)
    d = d + rate * (abs(clipped - m) - d)
    m = m + rate * (clipped - m)
    return (m, d, exc, tot, h, h2, ne)


def min_tail_p(
    states: list[TailState],
    values: tuple[float, ...],
    cfg: TailConfig,
    heavy: tuple[bool, ...],
    floors: tuple[float, ...],
) -> float:
    """The smallest :func:`tail_p` of several statistics (the single-stream hot path)."""
    spread, best = cfg.spread, 1.0
    for state, s, is_heavy, floor in zip(states, values, heavy, floors, strict=True):
        u = state[0] + spread * state[1]
        if s > u and s > floor and s > _U_MIN:  # most values stop here: they are ordinary
            best = min(best, tail_p(state, s, cfg, is_heavy, floor))
    return best


def learn_tails(
    states: list[TailState], values: list[float], cfg: TailConfig, floors: tuple[float, ...]
) -> list[TailState]:
    """:func:`tail_learn` of several statistics (the single-stream hot path)."""
    spread, keep, slowest = cfg.spread, cfg.keep, 1.0 / cfg.level_memory
    out = []
    for (m, d, exc, tot, h, h2, ne), s, floor in zip(states, values, floors, strict=True):
        u = max(m + spread * d, floor, _U_MIN)
        tot = tot * keep + 1.0
        if s > u:
            exc = exc * keep + 1.0
            ne = min(ne + 1.0, cfg.cap)
            excess = min(math.log(s / u), _MAX_LOG_EXCESS)
            h = h + (excess - h) / ne
            h2 = h2 + (excess * excess - h2) / ne
        else:
            exc = exc * keep + 0.0
        rate = max(slowest, 1.0 / (tot + _LEVEL_PRIOR))
        clipped = min(s, _CLIP_U * u)
        d = d + rate * (abs(clipped - m) - d)
        out.append((m + rate * (clipped - m), d, exc, tot, h, h2, ne))
    return out


def tail_p_many(
    state: dict[str, FloatArray],
    s: FloatArray,
    cfg: TailConfig,
    heavy: BoolArray,
    floors: FloatArray,
) -> FloatArray:
    """:func:`tail_p` for arrays.

    ``state`` maps :data:`TAIL_FIELDS` to arrays; ``heavy`` and ``floors`` broadcast against
    them (e.g. one per statistic, on the last axis). Only values above their threshold are
    worked on.
    """
    u = np.maximum(np.maximum(state["m"] + cfg.spread * state["d"], floors), _U_MIN)
    out = np.ones(s.shape)
    above = np.nonzero(s > u)
    if not above[0].size:
        return out
    exc, tot, h, h2, ne = (state[key][above] for key in ("exc", "tot", "h", "h2", "ne"))
    u, x = u[above], s[above]
    rate = (exc + _RATE_Q * _RATE_PRIOR) / (tot + _RATE_PRIOR) * (1.0 + _YOUNG / (tot + 1.0))
    m1 = np.maximum(H_MIN, h)
    m2 = np.maximum(_RATIO_MIN * m1 * m1, h2)
    minus = 1.0 - 0.5 / (1.0 - m1 * m1 / m2)
    weight = ne / (ne + N_PRIOR)
    prior = np.where(np.broadcast_to(heavy, s.shape)[above], XI0, 0.0)
    xi = prior + weight * (np.maximum(m1 + minus, 0.0) - prior)
    scale = SCALE0 + weight * (m1 * (1.0 - np.minimum(minus, 0.0)) - SCALE0)
    z = (x - u) / (u * scale)
    light = xi < _XI_EXP
    safe_xi = np.where(light, 1.0, xi)
    tail = np.where(light, np.exp(-z), (1.0 + safe_xi * z) ** (-1.0 / safe_xi))
    out[above] = np.minimum(1.0, rate * tail)
    return out


def tail_learn_many(
    state: dict[str, FloatArray], s: FloatArray, cfg: TailConfig, floors: FloatArray
) -> dict[str, FloatArray]:
    """:func:`tail_learn` for arrays; ``state`` maps :data:`TAIL_FIELDS` to arrays."""
    m, d, exc, tot, h, h2, ne = (state[key] for key in TAIL_FIELDS)
    u = np.maximum(np.maximum(m + cfg.spread * d, floors), _U_MIN)
    above = s > u
    tot = tot * cfg.keep + 1.0
    exc = exc * cfg.keep + np.where(above, 1.0, 0.0)
    ne = np.where(above, np.minimum(ne + 1.0, cfg.cap), ne)
    excess = np.minimum(np.log(np.where(above, s / u, 1.0)), _MAX_LOG_EXCESS)
    safe_ne = np.where(above, ne, 1.0)
    h = np.where(above, h + (excess - h) / safe_ne, h)
    h2 = np.where(above, h2 + (excess * excess - h2) / safe_ne, h2)
    rate = np.maximum(1.0 / cfg.level_memory, 1.0 / (tot + _LEVEL_PRIOR))
    clipped = np.minimum(s, _CLIP_U * u)
    d = d + rate * (np.abs(clipped - m) - d)
    m = m + rate * (clipped - m)
    return {"m": m, "d": d, "exc": exc, "tot": tot, "h": h, "h2": h2, "ne": ne}


def rarity_many(p: FloatArray) -> FloatArray:
    """Scores in [0, 1] of tail probabilities: a tenth of their decimal log-rarity.

    A probability of 1 (an ordinary value) scores 0; 10**-3.5 (one value in about 3000)
    scores 0.35; 10**-5 scores 0.5; 10**-10 and rarer score 1. Every calibrated detector
    turns probabilities into scores here, so a threshold means the same rarity in each.
    """
    q = np.minimum(1.0, p)
    with np.errstate(divide="ignore"):
        logp = np.maximum(np.log10(np.where(q > 0, q, 1e-300)), _LOG_P_FLOOR)
    scores: FloatArray = np.where(q >= 1.0, 0.0, np.minimum(1.0, -logp / 10.0))
    return scores


def tail_columns(block: FloatArray) -> dict[str, FloatArray]:
    """A block of tail rows (one per slot, columns :data:`TAIL_FIELDS`) as named columns."""
    return {key: block[:, j] for j, key in enumerate(TAIL_FIELDS)}


def tail_settled(tails: FloatArray, slots: IntArray, cfg: TailConfig) -> BoolArray:
    """Rows whose threshold learns at its slowest rate from now on (``1 / level_memory``)."""
    settled: BoolArray = tails[slots, 3] + _LEVEL_PRIOR >= cfg.level_memory
    return settled


def tail_zeros(rows: FloatArray, zeros: FloatArray, cfg: TailConfig) -> FloatArray:
    """Settled rows (columns :data:`TAIL_FIELDS`) after ``zeros`` more values of 0 each.

    The closed form of that many :func:`tail_learn` steps at the slowest rate ``r``: a 0 is
    never an excess, the counts decay, and with ``q = 1 - r`` the mean becomes ``m q**z``
    and the deviation ``d q**z + z r q**(z - 1) m`` (the mean is never negative). A detector
    whose statistic is mostly 0 (a stuck sensor's stillness) may so teach its zeros in bulk.
    """
    out = rows.copy()
    r = 1.0 / cfg.level_memory
    q = 1.0 - r
    qz = q**zeros
    m = rows[:, 0]
    out[:, 0] = m * qz
    out[:, 1] = rows[:, 1] * qz + zeros * r * q ** np.maximum(zeros - 1.0, 0.0) * m
    kz = cfg.keep**zeros
    out[:, 2] = rows[:, 2] * kz
    out[:, 3] = rows[:, 3] * kz + (1.0 - kz) / (1.0 - cfg.keep)
    return out


def tail_rarity_rows(
    tails: FloatArray,
    slots: IntArray,
    s: FloatArray,
    cfg: TailConfig,
    floors: FloatArray,
    heavy: bool = True,
    pending: FloatArray | None = None,
) -> FloatArray:
    """Scores (:func:`rarity_many`) of a statistic ``s`` of ``slots``, calibrated by rows.

    The calibrations are the rows ``slots`` of ``tails`` (a detector's per-slot state,
    columns :data:`TAIL_FIELDS`).

    Only values above their threshold (never under ``floors``) are worked on: most are
    ordinary, and a round of many sensors is spared the tail arithmetic. ``pending``: zeros
    each (settled) row has yet to be taught (:func:`tail_zeros`), counted in.
    """
    if pending is not None and pending.any():
        caught_up = tail_zeros(tails[slots], pending, cfg)
        return tail_rarity_rows(caught_up, np.arange(slots.size), s, cfg, floors, heavy)
    md = tails[slots, :2]
    u = np.maximum(np.maximum(md[:, 0] + cfg.spread * md[:, 1], floors), _U_MIN)
    out = np.zeros(s.shape)
    rare = np.flatnonzero(s > u)
    if rare.size:
        rows = tail_columns(tails[slots[rare]])
        p = tail_p_many(rows, s[rare], cfg, np.array(heavy), floors[rare])
        out[rare] = rarity_many(p)
    return out


def tail_teach_rows(
    tails: FloatArray, slots: IntArray, s: FloatArray, cfg: TailConfig, floors: FloatArray
) -> None:
    """:func:`tail_learn_many` of ``s`` into the rows ``slots`` of ``tails``, in place.

    Most values lie at or under their threshold: for them only the threshold's mean and
    deviation and the two counts move (the same float operations as :func:`tail_learn`),
    and the excess moments are left alone, which spares a round of many sensors most of
    the work.
    """
    if not slots.size:
        return
    head = tails[slots, :4]  # mean, deviation and counts: all that moves for most values
    m, d = head[:, 0], head[:, 1]
    u = np.maximum(np.maximum(m + cfg.spread * d, floors), _U_MIN)
    above = s > u
    if above.any():
        rows = slots[above]
        new = tail_learn_many(tail_columns(tails[rows]), s[above], cfg, floors[above])
        tails[rows] = np.column_stack([new[key] for key in TAIL_FIELDS])
        below = np.flatnonzero(~above)
        slots, head, s, u = slots[below], head[below], s[below], u[below]
    m, d, exc, tot = head[:, 0], head[:, 1], head[:, 2], head[:, 3]
    tot = tot * cfg.keep + 1.0
    rate = np.maximum(1.0 / cfg.level_memory, 1.0 / (tot + _LEVEL_PRIOR))
    clipped = np.minimum(s, _CLIP_U * u)
    out = np.empty_like(head)
    out[:, 1] = d + rate * (np.abs(clipped - m) - d)
    out[:, 0] = m + rate * (clipped - m)
    out[:, 2] = exc * cfg.keep + 0.0
    out[:, 3] = tot
    tails[slots, :4] = out


def tail_teach_ordinary(
    tails: FloatArray,
    pending: FloatArray,
    slots: IntArray,
    s: FloatArray,
    hot: BoolArray,
    drop: BoolArray,
    cfg: TailConfig,
    floors: FloatArray,
) -> None:
    """Teach ``s`` of ``slots`` unless it may be an emerging event, in place.

    A ``hot`` value (an excursion above a detector's calm level, not yet an alarm) waits: the
    excursion's largest value is kept in ``pending`` (one per slot) and taught once, when the
    excursion ends by itself, so an event cannot teach its own build-up to be ordinary while
    an excursion that came to nothing still teaches (learning never locks). ``drop``: slots
    whose value belongs to an event (an alarm, a refractory period): nothing is taught and
    the excursion is forgotten.
    """
    waiting = pending[slots]
    pending[slots[drop]] = 0.0
    keep = hot & ~drop
    pending[slots[keep]] = np.maximum(waiting[keep], s[keep])
    ordinary = ~hot & ~drop
    tail_teach_rows(tails, slots[ordinary], s[ordinary], cfg, floors[ordinary])
    ended = ordinary & (waiting > 0)
    if ended.any():
        tail_teach_rows(tails, slots[ended], waiting[ended], cfg, floors[ended])
        pending[slots[ended]] = 0.0
