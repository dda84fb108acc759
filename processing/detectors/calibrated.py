"""Calibrated scores: the rarity of each reading's evidence against the stream's own history.

The default detector of backtests (``calibrated``). Per stream it learns a level, a spread
and, when the data repeat themselves, a periodic profile; it turns every reading into five
pieces of evidence, each calibrated against its own history, and scores the rarest.
:mod:`processing.detectors._calibrated_model` holds the model's constants and warm-up,
:mod:`processing.detectors._tail` the calibration, :mod:`processing.detectors._period` the
period search, :mod:`processing.detectors._calibrated_series` the single-stream fast path.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from processing.detectors._calibrated_model import (
    DELAY,
    FLOORS,
    HEAVY,
    MAX_FORGET,
    SCALARS,
    SIGMA,
    ModelConfig,
    column,
    count_transform,
    initial_state,
    model_fields,
)
from processing.detectors._calibrated_series import SeriesModel
from processing.detectors._calibrated_vector import learn_grid, learn_profile, raw_scores, time_rows
from processing.detectors._private import (
    BoolArray,
    FloatArray,
    IntArray,
    check_alarm,
    check_count,
    check_fraction,
    check_positive,
)
from processing.detectors._tail import (
    TAIL_FIELDS,
    TailConfig,
    tail_init,
    tail_learn_many,
    tail_p_many,
)
from processing.detectors.base import ParamValue, StateField, Thresholder, VectorDetector
from processing.errors import DetectorConfigError

__all__ = ["CalibratedDetector"]

_BIG = 1e12
_SIGNS = {"both": 0, "up": 1, "down": -1}
_TINY = 1e-300
Rows = dict[str, FloatArray]


class CalibratedDetector(VectorDetector):
    """Readings that are rare for *this* stream: spikes, level shifts, variance and pattern changes.

    **Model.** A robust level (a slow reference and a fast one, blended by their recent
    errors, so a wandering series is followed and a stationary one is judged against a steady
    reference), a spread, and a profile over the period when the stream repeats itself (given
    as ``period_s``, or found from the data's autocorrelation on a regular time grid). A
    count-like stream (non-negative whole numbers in the warm-up) is modelled on Anscombe's
    root, where a count's noise is about 1 at any level. Spread floors come from the data:
    half its resolution (the smallest step between distinct values) and a quarter of the
    long-run spread. Every reading teaches, with residuals clipped at ``clip`` spreads, so an
    outlier has bounded influence and learning never locks; a new level that persists through
    an event for ``adopt_s`` is adopted outright.

    **Evidence** (each accumulated in time, so a gap forgets and repeated timestamps average):
    the reading's own residual; a fast and a slow mean of the clipped residuals from the
    reference (level shifts, subtle ones included); the mean absolute residual against its
    long-run value, fast (a burst of volatility) and slow (a variance or pattern change), and
    the other way (variance down); and how long the value has not moved (a stuck sensor),
    judged only once the stream has been seen to move.

    **Calibration.** Each statistic's tail probability against its own history
    (:mod:`~processing.detectors._tail`: a tracked upper quantile, the exceedance rate and a
    Pareto tail beyond it, so new records get a finite rarity). With ``p`` the smallest of the
    seven times 7 (Bonferroni), the score is ``min(1, -log10(p) / 10)``: the default threshold
    0.35 means one reading in about 3000 is as rare, whatever the stream's scale, resolution,
    noise or season; 0.4 one in 10 000, 0.5 one in 100 000. A young calibration (its first
    few hundred readings) inflates its probabilities: its tails are still a guess.

    **Events.** A raw score at or above ``alarm`` opens an event; while it is open (until the
    raw score stays under ``calm`` for ``calm_s``) scores are capped at ``calm``, so one event
    raises one alarm (``events=False`` reports the raw score, e.g. for alert lanes whose
    lifecycle already keeps one alert per event). Readings are never protected:
    ``learn_one(..., protect=True)`` learns them too.

    Args:
        period_s: the period of the stream's pattern; None: found from the data; 0: none.
        history: grid cells kept for finding the period (0: never look).
        max_bins: most profile bins per period.
        warmup: readings gathered before scoring starts.
        slow_alpha: learning rate of the reference level.
        fast_alpha: learning rate of the fast level.
        scale_alpha: learning rate of the spreads.
        profile_alpha: smallest learning rate of a profile bin.
        clip: residual clipping, in spreads.
        fast_evidence: weight of one interval in the short evidence averages.
        slow_evidence: weight of one interval in the long mean-shift average.
        tail_spread: each statistic's calibration threshold, in mean absolute deviations
            above its running mean.
        memory: readings the calibration remembers.
        alarm: raw score that opens an event (default: the default threshold).
        calm: raw score under which an open event calms down.
        calm_s: calm time closing an event (None: 12 sampling intervals).
        adopt_s: event time after which a new level is adopted (None: 48 intervals).
        events: one alarm per event (scores capped at ``calm`` while an event is open).
        direction: ``both``, or only ``up`` (readings and levels unusually high: e.g. a
            pollution alert, which rain washing the air clean must not raise) or ``down``;
            one-directional detectors ignore variance and stillness.
        relearn_after: unused (every reading trains); kept for the common contract.
        capacity: slots allocated up front.

    >>> import math
    >>> d = CalibratedDetector()
    >>> for i in range(600):
    ...     d.learn_one(10.0 + math.sin(i) + 0.3 * math.cos(7 * i), 60.0 * i)
    >>> d.score_one(10.2, 36_000.0) < 0.35 <= d.score_one(40.0, 36_000.0)
    True
    """

    name: ClassVar[str] = "calibrated"
    default_threshold: ClassVar[float] = 0.35
    catches: ClassVar[str] = "readings rare for this stream (spikes, shifts, variance, pattern)"

    def __init__(
        self,
        *,
        period_s: float | None = None,
        history: int = 2048,
        max_bins: int = 336,
        warmup: int = 24,
        slow_alpha: float = 0.01,
        fast_alpha: float = 0.5,
        scale_alpha: float = 0.02,
        profile_alpha: float = 0.1,
        clip: float = 3.0,
        fast_evidence: float = 0.2,
        slow_evidence: float = 0.03,
        tail_spread: float = 2.5,
        memory: float = 10_000.0,
        alarm: float | None = None,
        calm: float = 0.2,
        calm_s: float | None = None,
        adopt_s: float | None = None,
        events: bool = True,
        direction: str = "both",
        relearn_after: int = 0,
        capacity: int = 0,
    ) -> None:
        for key, rate in (("slow_alpha", slow_alpha), ("fast_alpha", fast_alpha),
                          ("scale_alpha", scale_alpha), ("profile_alpha", profile_alpha),
                          ("fast_evidence", fast_evidence), ("slow_evidence", slow_evidence),
                          ):  # fmt: skip
            check_fraction(key, rate)
        check_positive("clip", clip)
        check_positive("tail_spread", tail_spread)
        if direction not in _SIGNS:
            msg = f"direction must be 'both', 'up' or 'down', got {direction!r}"
            raise DetectorConfigError(msg)
        check_count("warmup", warmup, 4)
        check_count("history", history)
        check_count("max_bins", max_bins)
        for key, seconds in (("period_s", period_s), ("calm_s", calm_s), ("adopt_s", adopt_s)):
            if seconds is not None and not (np.isfinite(seconds) and seconds >= 0):
                msg = f"{key} must be a finite number >= 0 or None, got {seconds!r}"
                raise DetectorConfigError(msg)
        threshold = check_alarm(calm, self.default_threshold if alarm is None else alarm)
        self.cfg = ModelConfig(
            warmup, period_s, history, max_bins, slow_alpha, fast_alpha, scale_alpha,
            profile_alpha, clip, fast_evidence, slow_evidence, TailConfig(tail_spread, memory),
            threshold, calm, calm_s, adopt_s, events, _SIGNS[direction],
        )  # fmt: skip
        params: dict[str, ParamValue] = {
            "period_s": period_s, "history": history, "max_bins": max_bins, "warmup": warmup,
            "slow_alpha": slow_alpha, "fast_alpha": fast_alpha, "scale_alpha": scale_alpha,
            "profile_alpha": profile_alpha, "clip": clip, "fast_evidence": fast_evidence,
            "slow_evidence": slow_evidence, "tail_spread": tail_spread, "memory": memory,
            "alarm": alarm, "calm": calm, "calm_s": calm_s, "adopt_s": adopt_s, "events": events,
            "direction": direction,
        }  # fmt: skip
        self._pending: tuple[IntArray, FloatArray, FloatArray, FloatArray, Rows] | None = None
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        return model_fields(self.cfg)

    # --- the single-stream fast path ------------------------------------------------------

    def process_series(
        self,
        values: npt.ArrayLike,
        times_s: npt.ArrayLike,
        thresholder: Thresholder | None = None,
        *,
        slot: int = 0,
    ) -> tuple[FloatArray, BoolArray]:
        """Score, decide and learn one stream's points in order (the same as one round each).

        Returns:
            Scores and decisions (0 and False for non-finite points, which teach nothing).
        """
        decide = thresholder or self.thresholder()
        value_arr = np.asarray(values, dtype=np.float64)
        time_arr = np.asarray(times_s, dtype=np.float64)
        if value_arr.shape != time_arr.shape or value_arr.ndim != 1:
            msg = "values and times_s must be 1-D arrays of one length"
            raise DetectorConfigError(msg)
        self.ensure_capacity(slot + 1)
        ok = np.isfinite(value_arr) & np.isfinite(time_arr)
        scores = np.zeros(value_arr.size)
        model = SeriesModel(self.cfg, self._state, slot)
        scores[ok] = model.run(time_arr[ok].tolist(), value_arr[ok].tolist())
        model.store(self._state, slot)
        self._pending = None
        self._memo = None
        return scores, decide.classify_many(scores)

    def stream_state(self, slot: int = 0) -> dict[str, float]:
        """One stream's learnt scalars (level ``l1``, spread ``s``, ``period_s``, ...)."""
        if slot >= self.capacity:
            return dict.fromkeys(SCALARS, 0.0)
        return {key: float(self._state[key][slot]) for key in SCALARS}

    # --- the vectorised path --------------------------------------------------------------

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        return self._advance(slots, values, times_s)[0]

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        del train  # every reading trains, with bounded influence
        _, rows = self._advance(slots, values, times_s)
        self._pending = None
        st = self._state
        warming = column(st, "n")[slots] < self.cfg.warmup
        live = ~warming
        s = slots[live]
        if warming.any():
            rows = {key: value[live] for key, value in rows.items()}
            self._learn_warmup(slots[warming], values[warming], times_s[warming])
        for key in SCALARS:
            if key in rows:
                st[key][s] = rows[key]
        st["tails"][s] = rows["_tails"]
        pos = rows["delay_pos"].astype(np.intp)
        st["delay"][s, (pos - 1) % DELAY] = rows["_stats"]  # the position has advanced
        learn_profile(st, self.cfg, s, rows["_bin"], rows["_y"], rows["_limit"], rows["_w"])
        learn_grid(st, self.cfg, s, times_s[live], rows["_y"])

    def _learn_warmup(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> None:
        st, warmup = self._state, self.cfg.warmup
        k = column(st, "n")[slots].astype(np.intp)
        st["warm_x"][slots, k] = values
        st["warm_t"][slots, k] = times_s
        column(st, "n")[slots] = k + 1.0
        done = slots[k + 1 == warmup]
        if done.size:
            rows = initial_state(self.cfg, st["warm_x"][done], st["warm_t"][done])
            for key in SCALARS:
                st[key][done] = rows[key]
            fresh = [tail_init(u0, self.cfg.tail.spread) for u0 in self.cfg.u0]
            st["tails"][done] = np.array(fresh).T

    def _advance(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray
    ) -> tuple[FloatArray, Rows]:
        """Scores of a round and the new scalar state of its slots (pure, memoised)."""
        pending = self._pending
        if (
            pending is not None
            and np.array_equal(pending[0], slots)
            and np.array_equal(pending[1], values)
            and np.array_equal(pending[2], times_s)
        ):
            return pending[3], pending[4]
        scores, rows = self._compute(slots, values, times_s)
        self._pending = (slots.copy(), values.copy(), times_s.copy(), scores, rows)
        return scores, rows

    def _compute(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray
    ) -> tuple[FloatArray, Rows]:
        cfg, st = self.cfg, self._state
        sc = {key: st[key][slots] for key in SCALARS}
        c = cfg.clip
        y = np.where(sc["is_count"] > 0, count_transform(values), values)
        step = np.maximum(times_s - sc["t_last"], 0.0)
        k = np.minimum(step / sc["dt"], MAX_FORGET)  # a gap forgets, but never everything
        prof, b = self._profile(slots, times_s, sc)
        d = y - prof
        l1, l2, s, s1, e1, e2 = (sc[key] for key in ("l1", "l2", "s", "s1", "e1", "e2"))
        floor = np.maximum.reduce(
            [0.5 * sc["quantum"], 0.25 * sc["s_long"], 1e-9 * np.abs(l1), np.full(l1.size, _TINY)]
        )
        se, s1e = np.maximum(s, floor), np.maximum(s1, floor)
        pred = l2 + (e2 + _TINY) / (e1 + e2 + 2 * _TINY) * (l1 - l2)
        r = np.clip((d - pred) / se, -_BIG, _BIG)
        rc = np.clip((d - l1) / s1e, -c, c)
        a = np.minimum(np.abs(r), c)
        dec_f = (1.0 - cfg.fast_evidence) ** k
        dec_s = (1.0 - cfg.slow_evidence) ** k
        wf = dec_f * sc["wf"] + 1.0
        mf = sc["mf"] + (rc - sc["mf"]) / wf
        ws = dec_s * sc["ws"] + 1.0
        ms = sc["ms"] + (rc - sc["ms"]) / ws
        wv = dec_f * sc["wv"] + 1.0
        v = sc["v"] + (a - sc["v"]) / wv
        ac = np.abs(rc)
        wvs = dec_s * sc["wvs"] + 1.0
        vs = sc["vs"] + (ac - sc["vs"]) / wvs
        vd = sc["vd"] + (a - sc["vd"]) / wvs
        moved = sc["quantum"] > 0  # stillness means something once the stream has moved
        same = y == sc["y_prev"]  # a stuck sensor repeats its value exactly
        run = np.where(same & moved, sc["run_s"] + step, 0.0)
        vref, vsref = np.maximum(sc["v_ref"], 1e-6), np.maximum(sc["vs_ref"], 1e-6)
        still = np.where(moved, vref / np.maximum(vd, 1e-4 * vref), 0.0)
        g = cfg.sign
        if g:  # one direction only: rises (or falls) of the level; variance has no direction
            nil = np.zeros(r.size)
            signed = [np.maximum(g * r, 0.0), np.maximum(g * mf, 0.0), np.maximum(g * ms, 0.0)]
            stats = np.stack([*signed, nil, nil, nil, nil], axis=1)
        else:
            stats = np.stack(
                [np.abs(r), np.abs(mf), np.abs(ms), v / vref, vs / vsref, still, run / sc["dt"]],
                axis=1,
            )
        tail_block = st["tails"][slots]  # one gather, then a contiguous array per field
        tails = {key: np.ascontiguousarray(tail_block[:, j]) for j, key in enumerate(TAIL_FIELDS)}
        p_min = tail_p_many(tails, stats, cfg.tail, np.array(HEAVY), np.array(FLOORS)).min(axis=1)
        raw = raw_scores(p_min)
        score, l1, mf, ms = self._events(sc, raw, step, times_s, l1, l2, mf, ms)
        w = cfg.rare_weight ** np.minimum(raw / cfg.calm, 1.0)
        rows = self._learnt(sc, d, pred, l1, l2, s, s1, e1, e2, se, s1e, a, w)
        rows |= {"wf": wf, "mf": mf, "ws": ws, "ms": ms, "wv": wv, "v": v, "wvs": wvs, "vs": vs}
        rows |= {
            "vd": vd,
            "run_s": run,
            "vs_ref": sc["vs_ref"] + cfg.ref_alpha * (ac - sc["vs_ref"]),
        }
        rows |= time_rows(sc, step, times_s, y)
        rows |= self._calibrated(slots, sc, tails, stats)
        rows |= {"_bin": b.astype(np.float64), "_y": y, "_limit": c * s1e, "_w": w}
        new_tails = np.empty_like(tail_block)
        for j, key in enumerate(TAIL_FIELDS):
            new_tails[:, j] = rows.pop(f"tail_{key}")
        rows["_tails"] = new_tails
        warming = sc["n"] < cfg.warmup
        return np.where(warming, 0.0, score), rows

    def _calibrated(self, slots: IntArray, sc: Rows, tails: Rows, stats: FloatArray) -> Rows:
        """New tails (from the statistics of ``DELAY`` readings ago) and delay-line rows."""
        pos = sc["delay_pos"].astype(np.intp)
        old = self._state["delay"][slots, pos]
        full = sc["delay_n"] >= DELAY
        # An event does not teach the calibration what is rare until its level is adopted.
        learns = (full & ((sc["open"] == 0) | (sc["adopted"] > 0)))[:, None]
        new = tail_learn_many(tails, old, self.cfg.tail, np.array(FLOORS))
        rows = {f"tail_{key}": np.where(learns, new[key], tails[key]) for key in TAIL_FIELDS}
        rows["delay_pos"] = ((pos + 1) % DELAY).astype(np.float64)
        rows["delay_n"] = np.minimum(sc["delay_n"] + 1.0, float(DELAY))
        return rows | {"_stats": stats}

    def _profile(
        self, slots: IntArray, times_s: FloatArray, sc: Rows
    ) -> tuple[FloatArray, IntArray]:
        period, bins = sc["period_s"], sc["bins"]
        if self.cfg.max_bins == 0:
            return np.zeros(slots.size), np.full(slots.size, -1, dtype=np.intp)
        has = (period > 0) & (bins > 0)
        safe_period = np.where(has, period, 1.0)
        phase = np.mod(times_s - sc["t0"], safe_period) / safe_period * bins
        b = np.where(has, np.minimum(phase.astype(np.intp), bins.astype(np.intp) - 1), -1)
        index = np.maximum(b, 0)
        seen = has & (self._state["prof_n"][slots, index] > 0)
        return np.where(seen, self._state["prof"][slots, index], 0.0), b

    def _events(self, sc: Rows, raw: FloatArray, step: FloatArray, times_s: FloatArray,
                l1: FloatArray, l2: FloatArray, mf: FloatArray, ms: FloatArray
                ) -> tuple[FloatArray, ...]:  # fmt: skip
        cfg = self.cfg
        is_open = sc["open"] > 0
        score = np.where(is_open, np.minimum(raw, cfg.calm), raw) if cfg.events else raw
        calm = np.where(raw < cfg.calm, sc["calm_s"] + step, 0.0)
        closes = is_open & (calm >= cfg.calm_time(1.0) * (sc["dt"] if cfg.calm_s is None else 1.0))
        adopt_after = cfg.adopt_time(1.0) * (sc["dt"] if cfg.adopt_s is None else 1.0)
        adopts = is_open & ~closes & (sc["adopted"] == 0) & (times_s - sc["t_event"] >= adopt_after)
        opens = ~is_open & (raw >= cfg.alarm)
        sc["calm_s"] = np.where(is_open, calm, np.where(opens, 0.0, sc["calm_s"]))
        sc["open"] = np.where(closes, 0.0, np.where(opens, 1.0, sc["open"]))
        sc["t_event"] = np.where(opens, times_s, sc["t_event"])
        sc["adopted"] = np.where(adopts, 1.0, np.where(opens, 0.0, sc["adopted"]))
        return (score, np.where(adopts, l2, l1), np.where(adopts, 0.0, mf),
                np.where(adopts, 0.0, ms))  # fmt: skip

    def _learnt(self, sc: Rows, d: FloatArray, pred: FloatArray, l1: FloatArray,
                l2: FloatArray, s: FloatArray, s1: FloatArray, e1: FloatArray, e2: FloatArray,
                se: FloatArray, s1e: FloatArray, a: FloatArray, w: FloatArray
                ) -> Rows:  # fmt: skip
        cfg, c = self.cfg, self.cfg.clip
        cl1 = np.clip(d - l1, -c * s1e, c * s1e)
        cl2 = np.clip(d - l2, -c * se, c * se)
        clb = np.abs(np.clip(d - pred, -c * se, c * se))
        return {
            "l1": l1 + w * cfg.slow_alpha * cl1, "l2": l2 + cfg.fast_alpha * cl2,
            "s1": s1 + w * cfg.ref_scale_alpha * (SIGMA * np.abs(cl1) - s1),
            "e1": e1 + cfg.error_alpha * (cl1 * cl1 - e1),
            "e2": e2 + cfg.error_alpha * (cl2 * cl2 - e2),
            "s": s + w * cfg.scale_alpha * (SIGMA * clb - s),
            "s_long": sc["s_long"] + cfg.long_alpha * (SIGMA * clb - sc["s_long"]),
            "v_ref": sc["v_ref"] + cfg.ref_alpha * (a - sc["v_ref"]),
            "open": sc["open"], "calm_s": sc["calm_s"], "t_event": sc["t_event"],
            "adopted": sc["adopted"],
        }  # fmt: skip
