"""Rain gauges and street flood depth: rain → runoff lag → ponding → recession.

A flood-depth sensor sits at a hotspot fed by its upstream gauge's rain. Runoff reaches the
street through two linear reservoirs (the drainage lag, ``lag_min`` in total); the street
ponds when the inflow, concentrated by the catchment factor ``A``, exceeds what the drains
take (``drain_mm_h``, lowered when the basin has been loaded for hours); the pond recedes
with time constant ``recession_h``. With the fleet's defaults this reproduces the rule of
thumb of domain.md §6.1: <50 mm in 2 h leaves streets dry, 50–100 mm floods the known
hotspots by 20–40 cm, bursts of ~100 mm/h flood them within 15–30 min [U calibration].
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulators.signals.cycles import HOUR_S

__all__ = ["FloodDepthModel", "RainGaugeModel"]

Array = npt.NDArray[np.float64]

_BASIN_MM_H = 310.0 / 48.0  # design drainage of the central system: 310 mm in 48 h (§6.1)
_BASIN_FULL_MM = 200.0  # [U] basin load at which the drains lose most of their capacity


@dataclass(slots=True)
class RainGaugeModel:
    """A tipping-bucket rain gauge reporting mm per reporting interval.

    The bucket tips every ``bucket_mm``; a report counts the tips since the previous report,
    so light rain shows as occasional 0.2 mm readings, as on a real gauge.

    Args:
        bucket_mm: volume of one tip.
        total_mm: cumulative rain fallen so far (the state carried between chunks).
    """

    bucket_mm: float = 0.2
    total_mm: float = 0.0

    def sample(self, grid_s: Array, rain_mm_h: Array, times_s: Array, step_s: float) -> Array:
        """Rain reported at ``times_s`` (each report covers the time since the previous one)."""
        edges = np.append(grid_s, grid_s[-1] + step_s)
        cumulative = self.total_mm + np.concatenate(([0.0], np.cumsum(rain_mm_h) * step_s / HOUR_S))
        at = np.interp(times_s, edges, cumulative)
        tips = np.floor(np.concatenate(([self._tips_before()], at / self.bucket_mm)))
        self.total_mm = float(cumulative[-1])
        reported = np.diff(tips) * self.bucket_mm
        return np.asarray(np.round(np.maximum(reported, 0.0), 1), dtype=np.float64)

    def _tips_before(self) -> float:
        return self.total_mm / self.bucket_mm


@dataclass(slots=True)
class FloodDepthModel:
    """Street flood depth at one hotspot (true depth, cm, before sensor noise).

    Args:
        concentration: catchment-to-pond area factor ``A``.
        drain_mm_h: drain capacity in rain-equivalent mm/h over the catchment.
        recession_h: e-folding time of the pond once inflow is below drain capacity.
        lag_min: total runoff lag (two reservoirs of half this each).
        max_depth_cm: depth at which the water spreads sideways (soft cap).
        local_factor: rain at the hotspot relative to its gauge.
    """

    concentration: float
    drain_mm_h: float
    recession_h: float
    lag_min: float
    max_depth_cm: float = 120.0
    local_factor: float = 1.0
    _lag1: float = 0.0
    _lag2: float = 0.0
    _basin_mm: float = 0.0
    _storage_cm: float = 0.0

    def depth(self, rain_mm_h: Array, step_s: float) -> Array:
        """Advance over the grid and return the true depth (cm) at each step."""
        lag_k = 1.0 - np.exp(-step_s / (self.lag_min * 30.0))  # each reservoir: lag/2
        recess = np.exp(-step_s / (self.recession_h * HOUR_S))
        dt_h = step_s / HOUR_S
        out = np.empty_like(rain_mm_h)
        lag1, lag2, basin, storage = self._lag1, self._lag2, self._basin_mm, self._storage_cm
        for i, rain in enumerate((rain_mm_h * self.local_factor).tolist()):
            lag1 += (rain - lag1) * lag_k
            lag2 += (lag1 - lag2) * lag_k
            basin = max(0.0, basin + (lag2 - _BASIN_MM_H) * dt_h)
            drain = self.drain_mm_h * (1.0 - 0.6 * min(basin / _BASIN_FULL_MM, 1.0))
            inflow_cm_h = max(0.0, self.concentration * lag2 - drain) / 10.0
            storage = storage * recess + inflow_cm_h * dt_h
            out[i] = storage
        self._lag1, self._lag2, self._basin_mm, self._storage_cm = lag1, lag2, basin, storage
        return np.asarray(self.max_depth_cm * np.tanh(out / self.max_depth_cm), dtype=np.float64)
