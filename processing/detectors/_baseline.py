"""Robust per-slot, per-bin baselines shared by the seasonal, CUSUM and oxygen detectors.

An additive decomposition, Holt-Winters style without trend: the baseline of a reading in
bin ``b`` is ``level + profile[b]``. ``level`` follows the sensor's recent level (learning rate
``level_alpha``), so slow drifts and day-to-day changes are tracked; ``profile[b]`` is the
usual offset of bin ``b`` from that level (learning rate ``alpha``), e.g. the daily cycle.
The spread blends the bin's own residual spread and the spread of values around ``level``,
weight ``n_bin / (n_bin + prior)``: a young bin is judged leniently, so what it has not
learned yet (the daily cycle on day one) is not flagged and never locked out of learning.
Updates are streaming M-estimates: once warmed up, residuals are clipped at ``clip`` scales,
so one outlier moves the baseline by a bounded amount; spreads are running mean absolute
residuals, turned into standard deviations by :data:`MEAN_ABS_TO_SIGMA`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from processing.detectors._private import MEAN_ABS_TO_SIGMA, FloatArray, IntArray, ewma_rate
from processing.detectors.base import StateField

__all__ = ["BaselineConfig", "baseline", "baseline_fields", "learn_baseline"]


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    """How a binned baseline learns."""

    bins: int
    alpha: float
    level_alpha: float
    prior: float
    clip: float
    warmup: int
    min_scale: float
    rel_scale: float


def baseline_fields(bins: int) -> dict[str, StateField]:
    """The state arrays of a baseline with ``bins`` bins per slot."""
    per_bin = StateField((bins,))
    fields = {key: StateField() for key in ("n", "level", "vspread", "spread")}
    return fields | {"bin_n": per_bin, "bin_level": per_bin, "bin_spread": per_bin}


def baseline(
    state: dict[str, FloatArray], cfg: BaselineConfig, slots: IntArray, bins: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Level, scale and bin weight for ``bins`` of shape ``(n, m)`` (m bins per slot)."""
    rows = slots[:, None]
    bin_n = state["bin_n"][rows, bins]
    level = state["level"][rows] + np.where(bin_n > 0, state["bin_level"][rows, bins], 0.0)
    weight = bin_n / (bin_n + cfg.prior)
    spread = weight * state["bin_spread"][rows, bins] + (1 - weight) * state["vspread"][rows]
    floor = np.maximum(cfg.min_scale, cfg.rel_scale * np.abs(level))
    return level, np.maximum(MEAN_ABS_TO_SIGMA * spread, floor), weight


def learn_baseline(
    state: dict[str, FloatArray],
    cfg: BaselineConfig,
    slots: IntArray,
    bins: IntArray,
    x: FloatArray,
) -> None:
    """Fold values ``x`` of unique ``slots`` into their ``bins`` (both 1-D)."""
    level, scale, _ = baseline(state, cfg, slots, bins[:, None])
    level, scale = level[:, 0], scale[:, 0]
    n, bin_n = state["n"][slots], state["bin_n"][slots, bins]
    warming = n < cfg.warmup
    limit = np.where(warming, np.inf, cfg.clip * scale)
    residual = np.clip(x - level, -limit, limit)
    g_level, profile = state["level"][slots], state["bin_level"][slots, bins]
    # The level moves by the residual; the spread of values around it covers young bins.
    v_spread = state["vspread"][slots]
    v_floor = np.maximum(cfg.min_scale, cfg.rel_scale * np.abs(g_level))
    v_limit = np.where(
        warming, np.inf, cfg.clip * np.maximum(MEAN_ABS_TO_SIGMA * v_spread, v_floor)
    )
    deviation = np.clip(x - g_level, -v_limit, v_limit)
    rate = ewma_rate(n, cfg.alpha)
    state["vspread"][slots] = np.where(
        n == 0, 0.0, v_spread + rate * (np.abs(deviation) - v_spread)
    )
    level_rate = ewma_rate(n, cfg.level_alpha)
    new_level = np.where(n == 0, x, g_level + level_rate * residual)
    state["level"][slots] = new_level
    # Pooled residual spread: a new bin's starting spread.
    spread = state["spread"][slots]
    state["spread"][slots] = np.where(n == 0, 0.0, spread + rate * (np.abs(residual) - spread))
    state["n"][slots] = n + 1.0
    bin_rate = ewma_rate(bin_n, cfg.alpha)
    target = np.clip(x - new_level, profile - limit, profile + limit)
    state["bin_level"][slots, bins] = np.where(
        bin_n == 0, x - new_level, profile + bin_rate * (target - profile)
    )
    bin_spread = state["bin_spread"][slots, bins]
    state["bin_spread"][slots, bins] = np.where(
        bin_n == 0, spread, bin_spread + bin_rate * (np.abs(residual) - bin_spread)
    )
    state["bin_n"][slots, bins] = bin_n + 1.0
