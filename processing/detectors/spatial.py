"""Spatial: a sensor that disagrees with its neighbours (outlier now, or drifting away)."""

from __future__ import annotations

from typing import ClassVar, Final

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from processing.detectors._private import (
    MEAN_ABS_TO_SIGMA,
    BoolArray,
    FloatArray,
    IntArray,
    check_count,
    check_fraction,
    check_positive,
    squash,
)
from processing.detectors.base import DetectorSnapshot, ParamValue, StateField, VectorDetector
from processing.windows import nan_median_rows

__all__ = ["SpatialDetector"]

_TRIM: Final = 3.0  # residuals beyond this many spreads do not train the baseline
_KM_PER_DEG_LAT: Final = 110.574
_KM_PER_DEG_LON_EQUATOR: Final = 111.320


class SpatialDetector(VectorDetector):
    """Outliers and drift against spatial neighbours (a miscalibrated or drifting sensor).

    Each sensor is compared with the median of its ``k`` nearest neighbours of the same
    group (same quantity) within ``radius_km`` (found with ``scipy.spatial.cKDTree``), using
    each neighbour's latest value measured at or before the reading's time and at most
    ``max_age_s`` old; the values of the round being processed are published first, so
    sensors reporting at the same time are compared with each other and a city-wide jump is
    not an outlier. The residual ``x - median`` has a learned bias (sites differ; time
    constant ``bias_tau_s``) and spread. Two statistics, both in spreads: the reading's own
    residual (an outlier, scores 0.5 at ``z_half``) and a fast time-weighted average of
    residuals (a drift, scores 0.5 at ``drift_half``). The score is the larger; the default
    threshold is 0.5. A sensor without positioned neighbours scores 0.

    With ``log`` the comparison is made on ``log(1 + x)``: concentrations scale together (a
    city-wide episode multiplies every site, so absolute site differences grow with it, while
    ratios stay), and a sensor's drift is judged relative to the level.

    Sequential semantics are per *timestamp*, not per reading: one batch gives the same
    result as the same readings fed one timestamp at a time (when each timestamp holds at
    most one reading per sensor), while ``learn_one``/``score_one`` calls are rounds of
    their own and only see neighbours already learned.

    Args:
        k: neighbours per sensor.
        radius_km: neighbours further away are ignored.
        min_neighbors: fresh neighbour values needed for a reference.
        max_age_s: oldest neighbour value still used.
        bias_tau_s: time constant of the learned bias.
        fast_tau_s: time constant of the drift average.
        spread_tau_s: time constant of the residual spread once warmed up.
        alpha: largest learning rate of the residual spread.
        z_half: outlier z-score that scores 0.5.
        drift_half: drift z-score that scores 0.5.
        warmup: residuals learned before scoring starts.
        min_scale: floor on the residual spread.
        log: compare ``log(1 + x)`` (for concentrations) instead of ``x``.
        relearn_after: see :class:`~processing.detectors.base.VectorDetector`.
        capacity: slots allocated up front.

    >>> d = SpatialDetector(warmup=5)
    >>> d.set_positions(np.arange(4), np.full(4, 21.03), 105.85 + 0.01 * np.arange(4))
    >>> for i in range(20):
    ...     t = 600.0 * i
    ...     d.learn_many(np.arange(4), 30.0 + np.array([0.0, 1.0, -1.0, 0.5]), np.full(4, t))
    >>> scores = d.score_many(np.arange(4), np.array([30.0, 31.0, 29.0, 60.0]), np.full(4, 12e3))
    >>> [bool(s >= 0.5) for s in scores]
    [False, False, False, True]
    """

    name: ClassVar[str] = "spatial"
    default_threshold: ClassVar[float] = 0.5
    catches: ClassVar[str] = "sensors disagreeing with their neighbours (outliers, drift)"
    cross_sensor: ClassVar[bool] = True

    def __init__(
        self,
        *,
        k: int = 5,
        radius_km: float = 5.0,
        min_neighbors: int = 2,
        max_age_s: float = 3600.0,
        bias_tau_s: float = 3 * 86400.0,
        fast_tau_s: float = 1800.0,
        spread_tau_s: float = 86400.0,
        alpha: float = 0.02,
        z_half: float = 5.0,
        drift_half: float = 2.5,
        warmup: int = 10,
        min_scale: float = 1e-6,
        log: bool = False,
        relearn_after: int = 0,
        capacity: int = 0,
    ) -> None:
        check_count("k", k, 1)
        check_count("min_neighbors", min_neighbors, 1)
        check_count("warmup", warmup, 1)
        for key, value in (
            ("radius_km", radius_km),
            ("max_age_s", max_age_s),
            ("bias_tau_s", bias_tau_s),
            ("fast_tau_s", fast_tau_s),
            ("spread_tau_s", spread_tau_s),
            ("z_half", z_half),
            ("drift_half", drift_half),
            ("min_scale", min_scale),
        ):
            check_positive(key, value)
        check_fraction("alpha", alpha)
        self.k, self.radius_km, self.min_neighbors = k, radius_km, min(min_neighbors, k)
        self.max_age_s, self.bias_tau_s, self.fast_tau_s = max_age_s, bias_tau_s, fast_tau_s
        self.alpha, self.z_half, self.drift_half = alpha, z_half, drift_half
        self.spread_tau_s = spread_tau_s
        self.warmup, self.min_scale = warmup, min_scale
        params: dict[str, ParamValue] = {
            "k": k,
            "radius_km": radius_km,
            "min_neighbors": min_neighbors,
        }
        params |= {"max_age_s": max_age_s, "bias_tau_s": bias_tau_s, "fast_tau_s": fast_tau_s}
        params |= {"alpha": alpha, "z_half": z_half, "drift_half": drift_half}
        params |= {"spread_tau_s": spread_tau_s}
        params |= {"warmup": warmup, "min_scale": min_scale, "log": log}
        self.log = log
        self._neighbours: IntArray = np.full((0, k), -1, dtype=np.intp)
        self._dirty = True
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        missing = StateField((), np.nan)
        fields = {"lat": missing, "lon": missing, "group": StateField()}
        fields |= {"last_v": missing, "last_t": missing, "prev_v": missing, "prev_t": missing}
        fields |= {"own_t": missing}
        return fields | {key: StateField() for key in ("bias", "spread", "fast", "n")}

    def reset(self, slots: npt.ArrayLike) -> None:
        """Forget ``slots``, positions included (their neighbourhoods are rebuilt lazily)."""
        super().reset(slots)
        self._dirty = True

    def load_snapshot(self, snapshot: DetectorSnapshot) -> None:
        """Load state as the base class does, then rebuild the neighbour table lazily."""
        super().load_snapshot(snapshot)
        self._dirty = True

    def set_positions(
        self,
        slots: npt.ArrayLike,
        lat_deg: npt.ArrayLike,
        lon_deg: npt.ArrayLike,
        groups: npt.ArrayLike | None = None,
    ) -> None:
        """Place sensors (WGS84 degrees); only sensors of the same group are neighbours."""
        slot_arr = np.asarray(slots, dtype=np.intp)
        if slot_arr.size:
            self.ensure_capacity(int(slot_arr.max()) + 1)
        self._state["lat"][slot_arr] = np.asarray(lat_deg, dtype=np.float64)
        self._state["lon"][slot_arr] = np.asarray(lon_deg, dtype=np.float64)
        group = np.zeros(slot_arr.shape[0]) if groups is None else np.asarray(groups, np.float64)
        self._state["group"][slot_arr] = group
        self._dirty = True

    def _inputs(
        self, slots: npt.ArrayLike, values: npt.ArrayLike, times_s: npt.ArrayLike
    ) -> tuple[IntArray, FloatArray, FloatArray]:
        slot_arr, value_arr, time_arr = super()._inputs(slots, values, times_s)
        if self.log:
            with np.errstate(invalid="ignore"):
                value_arr = np.log1p(np.maximum(value_arr, 0.0))
        return slot_arr, value_arr, time_arr

    def _neighbour_table(self) -> IntArray:
        if self._dirty:
            self._neighbours = self._build_neighbours()
            self._dirty = False
        elif self._neighbours.shape[0] < self._capacity:
            pad = np.full((self._capacity - self._neighbours.shape[0], self.k), -1, np.intp)
            self._neighbours = np.vstack([self._neighbours, pad])
        return self._neighbours

    def _build_neighbours(self) -> IntArray:
        st = self._state
        table = np.full((self._capacity, self.k), -1, dtype=np.intp)
        placed = np.flatnonzero(np.isfinite(st["lat"]) & np.isfinite(st["lon"]))
        for group in np.unique(st["group"][placed]):
            members = placed[st["group"][placed] == group]
            if members.size < 2:
                continue
            lat0 = float(np.mean(st["lat"][members]))
            xy = np.column_stack(
                [
                    st["lon"][members] * _KM_PER_DEG_LON_EQUATOR * np.cos(np.radians(lat0)),
                    st["lat"][members] * _KM_PER_DEG_LAT,
                ]
            )
            count = min(self.k + 1, members.size)
            _, found = cKDTree(xy).query(xy, k=count, distance_upper_bound=self.radius_km)
            found = np.asarray(found).reshape(members.size, count)[:, 1:]
            valid = found < members.size
            mapped = np.where(valid, members[np.minimum(found, members.size - 1)], -1)
            table[members, : mapped.shape[1]] = mapped
        return table

    def _reference(self, slots: IntArray, times_s: FloatArray) -> FloatArray:
        st = self._state
        nbr = self._neighbour_table()[slots]
        has = nbr >= 0
        j = np.where(has, nbr, 0)
        t = times_s[:, None]
        use_last = st["last_t"][j] <= t
        value = np.where(use_last, st["last_v"][j], st["prev_v"][j])
        when = np.where(use_last, st["last_t"][j], st["prev_t"][j])
        fresh = has & (when <= t) & (t - when <= self.max_age_s)
        median = nan_median_rows(np.where(fresh, value, np.nan))
        return np.where(fresh.sum(axis=1) >= self.min_neighbors, median, np.nan)

    def _statistics(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        st = self._state
        residual = values - self._reference(slots, times_s)
        dt = times_s - st["own_t"][slots]
        fast_rate = np.where(
            np.isfinite(dt) & (st["n"][slots] > 0),
            1 - np.exp(-np.maximum(dt, 0) / self.fast_tau_s),
            1.0,
        )
        fast = st["fast"][slots] + fast_rate * (residual - st["fast"][slots])
        scale = np.maximum(MEAN_ABS_TO_SIGMA * st["spread"][slots], self.min_scale)
        return residual, fast, scale

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        residual, fast, scale = self._statistics(slots, values, times_s)
        bias = self._state["bias"][slots]
        outlier = np.abs(residual - bias) / scale / self.z_half
        drift = np.abs(fast - bias) / scale / self.drift_half
        ready = (self._state["n"][slots] >= self.warmup) & np.isfinite(residual)
        return np.where(ready, squash(np.maximum(outlier, drift), 1.0), 0.0)

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        st = self._state
        residual, fast, scale = self._statistics(slots, values, times_s)
        known = np.isfinite(residual)
        st["fast"][slots[known]] = fast[known]
        s = slots[train & known]
        r, sc = residual[train & known], scale[train & known]
        n, bias, spread = st["n"][s], st["bias"][s], st["spread"][s]
        deviation = r - bias
        # Trimmed, slow learning: a residual beyond ``_TRIM`` spreads teaches nothing, so a
        # drift cannot widen the spread or drag the bias along before it is flagged.
        keep = (n < self.warmup) | (np.abs(deviation) <= _TRIM * sc)
        dt = np.maximum(np.nan_to_num(times_s[train & known] - st["own_t"][s], nan=0.0), 0.0)
        bias_rate = np.maximum(1.0 - np.exp(-dt / self.bias_tau_s), 1.0 / (n + 1.0))
        settled = np.minimum(
            self.alpha, np.maximum(1.0 - np.exp(-dt / self.spread_tau_s), 1 / (n + 1))
        )
        spread_rate = np.where(n < self.warmup, 1.0 / (n + 1.0), settled)
        st["bias"][s] = np.where(n == 0, r, bias + keep * bias_rate * deviation)
        st["spread"][s] = np.where(
            n == 0, 0.0, spread + keep * spread_rate * (np.abs(deviation) - spread)
        )
        st["n"][s] = n + 1.0
        st["own_t"][slots] = np.fmax(st["own_t"][slots], times_s)

    def _begin_round(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> None:
        """Publish the round's values so neighbours measured at the same time see each other."""
        ok = np.isfinite(values) & np.isfinite(times_s)
        slots, values, times_s = slots[ok], values[ok], times_s[ok]
        st = self._state
        last_t = st["last_t"][slots]
        newer = ~(times_s <= last_t)  # also true when nothing was seen yet
        same = times_s == last_t
        shift = slots[newer]
        st["prev_v"][shift], st["prev_t"][shift] = st["last_v"][shift], st["last_t"][shift]
        st["last_v"][shift], st["last_t"][shift] = values[newer], times_s[newer]
        st["last_v"][slots[same]] = values[same]
