"""The calibrated model's vectorised helpers: profile, period grid, scores, time bookkeeping.

The counterpart of :class:`~processing.detectors._calibrated_series.SeriesModel`'s
``_learn_profile``/``_push_cell``/``_look_for_period`` (same arithmetic, same state arrays).
Slots are unique within a call (one round).
"""

from __future__ import annotations

import numpy as np

from processing.detectors._calibrated_model import N_STATS, ModelConfig, column, next_check
from processing.detectors._period import find_period, initial_profile, snap_period
from processing.detectors._private import FloatArray, IntArray
from processing.detectors._tail import SETTLED, TAIL_FIELDS, rarity_many

__all__ = ["learn_grid", "learn_profile", "raw_scores", "time_rows"]


def learn_profile(
    st: dict[str, FloatArray],
    cfg: ModelConfig,
    slots: IntArray,
    bins: FloatArray,
    y: FloatArray,
    limit: FloatArray,
    weight: FloatArray,
) -> None:
    """Move each slot's profile bin towards ``y - level`` by a clipped step."""
    has = bins >= 0
    if not has.any() or cfg.max_bins == 0:
        return
    s, b = slots[has], bins[has].astype(np.intp)
    old, seen = st["prof"][s, b], st["prof_n"][s, b]
    rate = weight[has] * np.maximum(cfg.profile_alpha, 1.0 / (seen + 1.0))
    target = y[has] - column(st, "l1")[s]
    st["prof"][s, b] = old + rate * np.clip(target - old, -limit[has], limit[has])
    st["prof_n"][s, b] = seen + 1.0


def learn_grid(
    st: dict[str, FloatArray], cfg: ModelConfig, slots: IntArray, times_s: FloatArray,
    y: FloatArray,
) -> None:  # fmt: skip
    """Add each value to its time cell; close finished cells; look for periods when due."""
    if cfg.history <= 0 or not slots.size:
        return
    cell = np.floor((times_s - column(st, "t0")[slots]) / column(st, "cell_s")[slots])
    current = column(st, "cell_idx")[slots]
    fresh = current < 0
    same = ~fresh & (cell <= current)
    moved = ~fresh & ~same
    s = slots[same]
    column(st, "cell_sum")[s] += y[same]
    column(st, "cell_cnt")[s] += 1.0
    m = slots[moved]
    if m.size:
        _append(st, cfg.history, m, column(st, "cell_sum")[m] / column(st, "cell_cnt")[m])
        gaps = np.minimum(cell[moved] - current[moved] - 1, cfg.history)
        for slot, gap in zip(m[gaps > 0].tolist(), gaps[gaps > 0].tolist(), strict=True):
            for _ in range(int(gap)):
                _append(st, cfg.history, np.array([slot]), np.array([np.nan]))
    opened = fresh | moved
    o = slots[opened]
    column(st, "cell_idx")[o], column(st, "cell_sum")[o], column(st, "cell_cnt")[o] = (
        cell[opened],
        y[opened],
        1.0,
    )
    if cfg.period_s is None and m.size:
        due = m[column(st, "grid_n")[m] >= column(st, "next_check")[m]]
        for slot in due.tolist():
            _look_for_period(st, cfg, slot)


def _append(st: dict[str, FloatArray], history: int, slots: IntArray, values: FloatArray) -> None:
    pos = column(st, "grid_pos")[slots].astype(np.intp)
    st["grid"][slots, pos] = values
    column(st, "grid_pos")[slots] = ((pos + 1) % history).astype(np.float64)
    column(st, "grid_n")[slots] += 1.0


def _look_for_period(st: dict[str, FloatArray], cfg: ModelConfig, slot: int) -> None:
    history = cfg.history
    grid_n = float(column(st, "grid_n")[slot])
    column(st, "next_check")[slot] = next_check(grid_n, history)
    held = int(min(grid_n, history))
    pos = int(column(st, "grid_pos")[slot])
    ring = st["grid"][slot]
    ordered = np.concatenate([ring[pos:], ring[:pos]])[history - held :]
    lag = find_period(ordered)
    cell_s, period_s = float(column(st, "cell_s")[slot]), float(column(st, "period_s")[slot])
    if lag == 0 or lag * cell_s < 1.5 * period_s:
        return
    period = snap_period(lag * cell_s)
    bins = min(cfg.max_bins, round(lag))
    prof, counts = initial_profile(
        ordered, float(column(st, "cell_idx")[slot]) - held, period / cell_s, bins
    )
    column(st, "period_s")[slot], column(st, "bins")[slot] = period, float(bins)
    st["prof"][slot, :bins], st["prof_n"][slot, :bins] = prof, counts
    # Residuals change nature with the profile: the tails relearn their shape quickly.
    ne = st["tails"][slot, TAIL_FIELDS.index("ne")]
    st["tails"][slot, TAIL_FIELDS.index("ne")] = np.minimum(ne, SETTLED)
    # Both levels restart at the deseasonalised level of the latest reading.
    phase = np.mod(column(st, "t_last")[slot] - column(st, "t0")[slot], period) / period * bins
    b = min(int(phase), bins - 1)
    now = float(st["prof"][slot, b]) if st["prof_n"][slot, b] > 0 else 0.0
    column(st, "l2")[slot] -= now
    column(st, "l1")[slot], column(st, "mf")[slot], column(st, "ms")[slot] = (
        column(st, "l2")[slot],
        0.0,
        0.0,
    )


def raw_scores(p_min: FloatArray) -> FloatArray:
    """Scores of the smallest tail probabilities (see ``raw_score`` of the series path)."""
    return rarity_many(N_STATS * p_min)


def time_rows(
    sc: dict[str, FloatArray], step: FloatArray, times_s: FloatArray, y: FloatArray
) -> dict[str, FloatArray]:
    """New resolution, previous value, sampling interval, last time and count."""
    gap = np.abs(y - sc["y_prev"])
    resolves = gap > 1e-12 * (np.abs(y) + np.abs(sc["y_prev"]))
    quantum = np.where(
        resolves, np.where(sc["quantum"] <= 0, gap, np.minimum(sc["quantum"], gap)), sc["quantum"]
    )
    dt = sc["dt"]
    moved = np.where(step > dt, dt * 1.02, np.where(step < dt, dt * (1.0 / 1.02), dt))
    return {
        "quantum": quantum, "y_prev": y, "dt": np.where(step > 0, moved, dt),
        "t_last": np.where(step > 0, times_s, sc["t_last"]), "n": sc["n"] + 1.0,
    }  # fmt: skip
