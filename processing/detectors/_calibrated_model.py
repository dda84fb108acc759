"""The calibrated detector's configuration, state layout and warm-up (shared by both paths).

:mod:`processing.detectors.calibrated` runs the model on many slots with numpy;
:mod:`processing.detectors._calibrated_series` runs it on one stream with plain floats. Both
read this module's :class:`ModelConfig` and the same state arrays, and start a stream from its
warm-up readings with :func:`initial_state` (numpy, once per stream), so a state can pass from
one path to the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from processing.detectors._private import MEAN_ABS_TO_SIGMA, FloatArray
from processing.detectors._tail import TAIL_FIELDS, TailConfig
from processing.detectors.base import StateField

__all__ = [
    "DELAY",
    "FIRST_CHECK",
    "FLOORS",
    "HEAVY",
    "MAX_FORGET",
    "N_STATS",
    "SCALARS",
    "SIGMA",
    "ModelConfig",
    "column",
    "count_transform",
    "initial_state",
    "model_fields",
    "next_check",
]

N_STATS: Final = 7
"""Statistics calibrated: |residual|, fast and slow mean shift, fast variance up, slow
variance up (of the residual from the reference), slow variance down, and the time the value
has not moved."""
HEAVY: Final = (True, False, False, False, False, False, True)
"""Which statistics may have heavy tails: the raw residual only (the others average or count
clipped values, so their tails are light)."""
FLOORS: Final = (1.0, 0.1, 0.05, 1.0, 1.0, 1.0, 1.0)
"""Least calibration threshold of each statistic, in its own units: a residual within one
spread, a stillness under one interval, a variance under its usual value are never rare,
however often the stream sits exactly on its prediction (a noise-free pattern)."""
MAX_FORGET: Final = 3.0
"""Intervals of evidence a gap forgets at most: after an outage the averages keep some weight,
or a single reading would pose as a long average."""
DELAY: Final = 64
"""Readings a statistic waits before it calibrates: a building event cannot mask itself."""
SCALARS: Final = (
    "n", "t0", "t_last", "dt", "cell_s", "is_count", "quantum", "y_prev",
    "l1", "l2", "s", "s1", "s_long", "e1", "e2",
    "wf", "mf", "ws", "ms", "wv", "v", "wvs", "vs", "vd", "v_ref", "vs_ref", "run_s",
    "open", "t_event", "calm_s", "adopted",
    "period_s", "bins", "cell_idx", "cell_sum", "cell_cnt", "grid_pos", "grid_n", "next_check",
    "delay_pos", "delay_n",
)  # fmt: skip
"""Per-slot scalar state, in a fixed order."""
_NULL_ABS_Z: Final = 2.33
"""Start of the |z| threshold (the 98th percentile of a normal |z|)."""
_CELL_SPAN_S: Final = 4 * 86_400.0
"""The period grid always spans at least four days, so a daily cycle can be found."""
SIGMA: Final = MEAN_ABS_TO_SIGMA
FIRST_CHECK: Final = 24
"""Grid cells before the first look for a period."""


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Every constant of the model (derived from the detector's parameters).

    Args:
        warmup: readings gathered before anything is scored.
        period_s: the repeating pattern's period; None: found from the data; 0: none.
        history: grid cells kept to find the period (0: never look).
        max_bins: most profile bins per period.
        slow_alpha: rate of the slow (reference) level.
        fast_alpha: rate of the fast level (tracks wandering series).
        scale_alpha: rate of the spreads.
        profile_alpha: smallest rate of a profile bin.
        clip: residual clipping, in spreads (bounded influence).
        fast_evidence: weight of a reading in the short evidence averages.
        slow_evidence: weight of a reading in the long mean-shift average.
        tail: how each statistic is calibrated.
        alarm: raw score that opens an event.
        calm: raw score under which an event calms down.
        calm_s: calm time that closes an event (None: 12 sampling intervals).
        adopt_s: event time after which the new level is adopted (None: 48 intervals).
        events: cap scores at ``calm`` while an event is open (one alarm per event).
        sign: 0 for both directions, 1 for rises only, -1 for falls only.
    """

    warmup: int
    period_s: float | None
    history: int
    max_bins: int
    slow_alpha: float
    fast_alpha: float
    scale_alpha: float
    profile_alpha: float
    clip: float
    fast_evidence: float
    slow_evidence: float
    tail: TailConfig
    alarm: float
    calm: float
    calm_s: float | None
    adopt_s: float | None
    events: bool
    sign: int = 0
    rare_weight: float = 0.2
    error_alpha: float = 0.02
    long_alpha: float = 0.001
    ref_alpha: float = 0.005
    u0: tuple[float, ...] = field(init=False)
    ref_scale_alpha: float = field(init=False)

    def __post_init__(self) -> None:
        def null(b: float) -> float:
            return _NULL_ABS_Z * math.sqrt(b / (2.0 - b))

        u0 = (_NULL_ABS_Z, null(self.fast_evidence), null(self.slow_evidence), 1.5, 1.2, 1.2, 3.0)
        object.__setattr__(self, "u0", u0)
        # The reference's spread moves slower than evidence builds up, or a shift would
        # widen it before it is noticed.
        object.__setattr__(self, "ref_scale_alpha", self.scale_alpha / 4.0)

    def calm_time(self, dt: float) -> float:
        """Calm time that closes an event, for a stream sampled every ``dt`` seconds."""
        return 12.0 * dt if self.calm_s is None else self.calm_s

    def adopt_time(self, dt: float) -> float:
        """Event time after which the new level is adopted."""
        return 48.0 * dt if self.adopt_s is None else self.adopt_s


def model_fields(cfg: ModelConfig) -> dict[str, StateField]:
    """The per-slot state arrays of the model.

    One array per scalar (a batch gathers each contiguously), and the tails in one block
    (``tails``: :data:`TAIL_FIELDS` x statistic, so each field of a batch is a run of rows).
    """
    fields = {key: StateField() for key in SCALARS}
    fields |= {"tails": StateField((len(TAIL_FIELDS), N_STATS))}
    fields |= {"warm_x": StateField((cfg.warmup,)), "warm_t": StateField((cfg.warmup,))}
    fields |= {"grid": StateField((cfg.history,), np.nan)}
    fields |= {"delay": StateField((DELAY, N_STATS), np.nan)}
    return fields | {"prof": StateField((cfg.max_bins,)), "prof_n": StateField((cfg.max_bins,))}


def column(state: dict[str, FloatArray], key: str) -> FloatArray:
    """One scalar's array (writes go to the state)."""
    return state[key]


def count_transform(x: FloatArray) -> FloatArray:
    """Anscombe's root, 2 sqrt(x + 3/8), signed: a count's noise becomes about 1 at any level."""
    shifted = x + 0.375
    out: FloatArray = np.sign(shifted) * 2.0 * np.sqrt(np.abs(shifted))
    return out


def _quantum(y: FloatArray) -> FloatArray:
    """Per row, the smallest step between distinct values (0 when all are equal)."""
    ordered = np.sort(y, axis=1)
    steps = np.diff(ordered, axis=1)
    tiny = 1e-12 * (np.abs(ordered[:, 1:]) + np.abs(ordered[:, :-1]))
    steps = np.where(steps > tiny, steps, np.inf)
    smallest = steps.min(axis=1, initial=np.inf)
    out: FloatArray = np.where(np.isfinite(smallest), smallest, 0.0)
    return out


def _typical_step(times: FloatArray) -> FloatArray:
    """Per row, the median positive time step (1 s when there is none)."""
    steps = np.diff(np.sort(times, axis=1), axis=1)
    steps = np.where(steps > 0, steps, np.nan)
    has = np.asarray(np.isfinite(steps).any(axis=1), dtype=bool)
    safe = np.where(has[:, None], steps, 1.0)
    with np.errstate(all="ignore"):
        med = np.nanmedian(safe, axis=1)
    out: FloatArray = np.where(has, med, 1.0)
    return out


def initial_state(
    cfg: ModelConfig, warm_x: FloatArray, warm_t: FloatArray
) -> dict[str, FloatArray]:
    """Scalar state of streams whose warm-up rows are complete (one row per stream).

    Count-like streams (only non-negative whole numbers so far) are modelled on Anscombe's
    root; the level starts at the median, the spreads at the mean absolute deviation, the
    resolution at the smallest step between distinct values.
    """
    is_count = np.all((warm_x >= 0) & (warm_x == np.floor(warm_x)), axis=1)
    y = np.where(is_count[:, None], count_transform(warm_x), warm_x)
    med = np.median(y, axis=1)
    spread = SIGMA * np.mean(np.abs(y - med[:, None]), axis=1)
    dt = _typical_step(warm_t)
    cell_s = np.maximum(dt, _CELL_SPAN_S / max(cfg.history, 1))
    n = warm_x.shape[0]
    zeros = np.zeros(n)
    err = spread * spread + 1e-300
    state = {key: zeros.copy() for key in SCALARS}
    state |= {
        "n": np.full(n, float(cfg.warmup)), "t0": warm_t[:, 0].copy(),
        "t_last": warm_t.max(axis=1), "dt": dt, "cell_s": cell_s,
        "is_count": is_count.astype(np.float64), "quantum": _quantum(y), "y_prev": y[:, -1].copy(),
        "l1": med, "l2": med.copy(), "s": spread, "s1": spread.copy(), "s_long": spread.copy(),
        "e1": err, "e2": err.copy(),
        "wf": np.full(n, 1.0 / cfg.fast_evidence), "ws": np.full(n, 1.0 / cfg.slow_evidence),
        "wv": np.full(n, 1.0 / cfg.fast_evidence), "v": np.full(n, 0.8), "v_ref": np.full(n, 0.8),
        "wvs": np.full(n, 1.0 / cfg.slow_evidence), "vs": np.full(n, 0.8), "vd": np.full(n, 0.8),
        "vs_ref": np.full(n, 0.8),
        "t_event": np.full(n, -np.inf), "cell_idx": np.full(n, -1.0),
        "next_check": np.full(n, float(FIRST_CHECK)),
    }  # fmt: skip
    if cfg.period_s:
        state["period_s"] = np.full(n, cfg.period_s)
        state["bins"] = np.minimum(cfg.max_bins, np.maximum(1.0, np.round(cfg.period_s / dt)))
    return state


def next_check(grid_n: float, history: int) -> float:
    """When (in grid cells pushed) to look for a period again."""
    return grid_n + max(32.0, min(grid_n, float(history)) // 4)
