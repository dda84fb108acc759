"""The calibrated model on one stream, with plain Python floats (the backtest's fast path).

Numpy's per-call overhead (about a microsecond) dominates when a batch holds one reading, so
the single-stream path runs the same arithmetic as :mod:`processing.detectors.calibrated`
on floats and lists, and loads/stores the same state arrays: the vectorised and the scalar
path give the same scores (to the last bits of ``log``/``pow``) and can take over from each
other at any point.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from processing.detectors._calibrated_model import (
    DELAY,
    FLOORS,
    HEAVY,
    MAX_FORGET,
    N_STATS,
    SCALARS,
    SIGMA,
    ModelConfig,
    initial_state,
    next_check,
)
from processing.detectors._period import find_period, initial_profile, snap_period
from processing.detectors._private import FloatArray
from processing.detectors._tail import (
    SETTLED,
    TailState,
    learn_tails,
    min_tail_p,
    tail_init,
)

__all__ = ["SeriesModel", "raw_score"]

_BIG: Final = 1e12
_DT_UP: Final = 1.02
_DT_DOWN: Final = 1.0 / 1.02
_LOG_P_FLOOR: Final = -10.0
_TINY: Final = 1e-300
_MAX_FORGET: Final = MAX_FORGET


def raw_score(p_min: float) -> float:
    """Score in [0, 1] of the smallest tail probability: a tenth of its decimal log-rarity."""
    p = min(1.0, N_STATS * p_min)
    return 0.0 if p >= 1.0 else min(1.0, -max(math.log10(max(p, _TINY)), _LOG_P_FLOOR) / 10.0)


class SeriesModel:
    """One stream's state as floats; :meth:`run` scores points one by one.

    Args:
        cfg: the model's constants.
        state: the detector's state arrays (read at ``slot`` now, written back by
            :meth:`store`).
        slot: the stream's slot.
    """

    def __init__(self, cfg: ModelConfig, state: dict[str, FloatArray], slot: int) -> None:
        self.cfg = cfg
        self.sc: dict[str, float] = {key: float(state[key][slot]) for key in SCALARS}
        self.tails: list[TailState] = [tuple(row) for row in state["tails"][slot].T.tolist()]
        self.warm_x = state["warm_x"][slot].tolist()
        self.warm_t = state["warm_t"][slot].tolist()
        self.grid = state["grid"][slot].tolist()
        self.prof = state["prof"][slot].tolist()
        self.prof_n = state["prof_n"][slot].tolist()
        self.delay: list[list[float]] = state["delay"][slot].tolist()

    def store(self, state: dict[str, FloatArray], slot: int) -> None:
        """Write this stream's state back into the detector's arrays."""
        for key, value in self.sc.items():
            state[key][slot] = value
        state["tails"][slot] = np.array(self.tails).T
        for key in ("warm_x", "warm_t", "grid", "prof", "prof_n", "delay"):
            state[key][slot] = getattr(self, key)

    def run(self, times: list[float], values: list[float]) -> list[float]:
        """Scores of finite points, in order (each scored before it is learnt)."""
        warmup = self.cfg.warmup
        out = []
        for t, x in zip(times, values, strict=True):
            if self.sc["n"] < warmup:
                out.append(self._warm(t, x))
            else:
                out.append(self._step(t, x))
        return out

    def _warm(self, t: float, x: float) -> float:
        k = int(self.sc["n"])
        self.warm_x[k], self.warm_t[k] = x, t
        self.sc["n"] = k + 1.0
        if k + 1 == self.cfg.warmup:
            rows = initial_state(self.cfg, np.array([self.warm_x]), np.array([self.warm_t]))
            self.sc = {key: float(rows[key][0]) for key in SCALARS}
            self.tails = [tail_init(u0, self.cfg.tail.spread) for u0 in self.cfg.u0]
        return 0.0

    def _profile(self, t: float) -> tuple[float, int]:
        period, bins = self.sc["period_s"], int(self.sc["bins"])
        if period <= 0 or bins <= 0:
            return 0.0, -1
        b = min(int(((t - self.sc["t0"]) % period) / period * bins), bins - 1)
        return (self.prof[b] if self.prof_n[b] > 0 else 0.0), b

    def _step(self, t: float, x: float) -> float:
        cfg, sc = self.cfg, self.sc
        c = cfg.clip
        y = x
        if sc["is_count"]:
            shifted = x + 0.375
            y = math.copysign(2.0 * math.sqrt(abs(shifted)), shifted)
        step = max(t - sc["t_last"], 0.0)
        k = min(step / sc["dt"], _MAX_FORGET)  # a gap forgets, but never everything
        prof, b = self._profile(t)
        d = y - prof
        l1, l2, s, s1 = sc["l1"], sc["l2"], sc["s"], sc["s1"]
        floor = max(0.5 * sc["quantum"], 0.25 * sc["s_long"], 1e-9 * abs(l1), _TINY)
        se, s1e = max(s, floor), max(s1, floor)
        e1, e2 = sc["e1"], sc["e2"]
        pred = l2 + (e2 + _TINY) / (e1 + e2 + 2 * _TINY) * (l1 - l2)
        r = min(max((d - pred) / se, -_BIG), _BIG)
        rc = min(max((d - l1) / s1e, -c), c)
        a = min(abs(r), c)
        dec_f = (1.0 - cfg.fast_evidence) ** k
        dec_s = (1.0 - cfg.slow_evidence) ** k
        wf = dec_f * sc["wf"] + 1.0
        mf = sc["mf"] + (rc - sc["mf"]) / wf
        ws = dec_s * sc["ws"] + 1.0
        ms = sc["ms"] + (rc - sc["ms"]) / ws
        wv = dec_f * sc["wv"] + 1.0
        v = sc["v"] + (a - sc["v"]) / wv
        ac = abs(rc)
        wvs = dec_s * sc["wvs"] + 1.0
        vs = sc["vs"] + (ac - sc["vs"]) / wvs
        vd = sc["vd"] + (a - sc["vd"]) / wvs
        moved = sc["quantum"] > 0  # stillness means something once the stream has moved
        same = y == sc["y_prev"]  # a stuck sensor repeats its value exactly
        run = sc["run_s"] + step if same and moved else 0.0
        vref, vsref = max(sc["v_ref"], 1e-6), max(sc["vs_ref"], 1e-6)
        still = vref / max(vd, 1e-4 * vref) if moved else 0.0
        g = cfg.sign
        if g:  # one direction only: rises (or falls) of the level; variance has no direction
            stats = (max(g * r, 0.0), max(g * mf, 0.0), max(g * ms, 0.0), 0.0, 0.0, 0.0, 0.0)
        else:
            stats = (abs(r), abs(mf), abs(ms), v / vref, vs / vsref, still, run / sc["dt"])
        raw = raw_score(min_tail_p(self.tails, stats, cfg.tail, HEAVY, FLOORS))
        score = raw
        if sc["open"]:
            if cfg.events:
                score = min(raw, cfg.calm)
            sc["calm_s"] = sc["calm_s"] + step if raw < cfg.calm else 0.0
            if sc["calm_s"] >= cfg.calm_time(sc["dt"]):
                sc["open"] = 0.0
            elif not sc["adopted"] and t - sc["t_event"] >= cfg.adopt_time(sc["dt"]):
                l1, mf, ms, sc["adopted"] = l2, 0.0, 0.0, 1.0
        elif raw >= cfg.alarm:
            sc["open"], sc["t_event"], sc["calm_s"], sc["adopted"] = 1.0, t, 0.0, 0.0
        # Learning: every reading teaches, with bounded influence (residuals clipped, and
        # the rarer a reading the less it teaches the reference: down to a fifth at ``calm``).
        w = cfg.rare_weight ** min(raw / cfg.calm, 1.0)
        cl1 = min(max(d - l1, -c * s1e), c * s1e)
        sc["l1"] = l1 + w * cfg.slow_alpha * cl1
        sc["s1"] = s1 + w * cfg.ref_scale_alpha * (SIGMA * abs(cl1) - s1)
        cl2 = min(max(d - l2, -c * se), c * se)
        sc["l2"] = l2 + cfg.fast_alpha * cl2
        sc["e1"] = e1 + cfg.error_alpha * (cl1 * cl1 - e1)
        sc["e2"] = e2 + cfg.error_alpha * (cl2 * cl2 - e2)
        clb = abs(min(max(d - pred, -c * se), c * se))
        sc["s"] = s + w * cfg.scale_alpha * (SIGMA * clb - s)
        sc["s_long"] = sc["s_long"] + cfg.long_alpha * (SIGMA * clb - sc["s_long"])
        sc["v_ref"] = sc["v_ref"] + cfg.ref_alpha * (a - sc["v_ref"])
        sc["vs_ref"] = sc["vs_ref"] + cfg.ref_alpha * (ac - sc["vs_ref"])
        sc["wf"], sc["mf"], sc["ws"], sc["ms"], sc["wv"], sc["v"] = wf, mf, ws, ms, wv, v
        sc["wvs"], sc["vs"], sc["vd"], sc["run_s"] = wvs, vs, vd, run
        if b >= 0:
            self._learn_profile(b, y - sc["l1"], c * s1e, w)
        self._learn_resolution(y)
        if step > 0:
            dt = sc["dt"]
            sc["dt"] = dt * _DT_UP if step > dt else dt * _DT_DOWN if step < dt else dt
            sc["t_last"] = t
        sc["n"] += 1.0
        self._calibrate(list(stats))
        self._push_cell(t, y)
        return score

    def _calibrate(self, stats: list[float]) -> None:
        """Queue this reading's statistics; the calibration learns those of ``DELAY`` ago."""
        sc, tc = self.sc, self.cfg.tail
        pos = int(sc["delay_pos"])
        old, self.delay[pos] = self.delay[pos], stats
        sc["delay_pos"] = float((pos + 1) % DELAY)
        full = sc["delay_n"] >= DELAY
        sc["delay_n"] = min(sc["delay_n"] + 1.0, float(DELAY))
        # An event does not teach the calibration what is rare until its level is adopted.
        if full and (not sc["open"] or sc["adopted"]):
            self.tails = learn_tails(self.tails, old, tc, FLOORS)

    def _learn_profile(self, b: int, target: float, limit: float, weight: float) -> None:
        old, seen = self.prof[b], self.prof_n[b]
        rate = weight * max(self.cfg.profile_alpha, 1.0 / (seen + 1.0))
        self.prof[b] = old + rate * min(max(target - old, -limit), limit)
        self.prof_n[b] = seen + 1.0

    def _learn_resolution(self, y: float) -> None:
        sc = self.sc
        gap = abs(y - sc["y_prev"])
        if gap > 1e-12 * (abs(y) + abs(sc["y_prev"])):
            sc["quantum"] = gap if sc["quantum"] <= 0 else min(sc["quantum"], gap)
        sc["y_prev"] = y

    def _push_cell(self, t: float, y: float) -> None:
        sc, history = self.sc, self.cfg.history
        if history <= 0:
            return
        cell = math.floor((t - sc["t0"]) / sc["cell_s"])
        if sc["cell_idx"] < 0:
            sc["cell_idx"], sc["cell_sum"], sc["cell_cnt"] = cell, y, 1.0
            return
        if cell <= sc["cell_idx"]:
            sc["cell_sum"] += y
            sc["cell_cnt"] += 1.0
            return
        self._append(sc["cell_sum"] / sc["cell_cnt"])
        for _ in range(int(min(cell - sc["cell_idx"] - 1, history))):
            self._append(math.nan)
        sc["cell_idx"], sc["cell_sum"], sc["cell_cnt"] = cell, y, 1.0
        if self.cfg.period_s is None and sc["grid_n"] >= sc["next_check"]:
            self._look_for_period()

    def _append(self, value: float) -> None:
        sc = self.sc
        pos = int(sc["grid_pos"])
        self.grid[pos] = value
        sc["grid_pos"] = float((pos + 1) % self.cfg.history)
        sc["grid_n"] += 1.0

    def _look_for_period(self) -> None:
        sc, history = self.sc, self.cfg.history
        sc["next_check"] = next_check(sc["grid_n"], history)
        held = int(min(sc["grid_n"], history))
        pos = int(sc["grid_pos"])
        ring = np.asarray(self.grid)
        ordered = np.concatenate([ring[pos:], ring[:pos]])[history - held :]
        lag = find_period(ordered)
        if lag == 0 or lag * sc["cell_s"] < 1.5 * sc["period_s"]:
            return
        period_s = snap_period(lag * sc["cell_s"])
        bins = min(self.cfg.max_bins, round(lag))
        prof, counts = initial_profile(
            ordered, sc["cell_idx"] - held, period_s / sc["cell_s"], bins
        )
        sc["period_s"], sc["bins"] = period_s, float(bins)
        self.prof[:bins], self.prof_n[:bins] = prof.tolist(), counts.tolist()
        # Both levels restart at the deseasonalised level of the latest reading.
        now, _ = self._profile(sc["t_last"])
        sc["l2"] -= now
        sc["l1"], sc["mf"], sc["ms"] = sc["l2"], 0.0, 0.0
        # Residuals change nature with the profile: the tails relearn their shape quickly.
        self.tails = [(*tail[:6], min(tail[6], SETTLED)) for tail in self.tails]
