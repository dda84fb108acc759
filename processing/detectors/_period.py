"""Finding a repeating pattern's period from the data, and its first profile.

The detector keeps the recent history on a regular time grid (cells of a fixed width in
seconds, NaN where nothing arrived), so irregular sampling and gaps do not bend the lags.
:func:`find_period` takes the unbiased autocorrelation of the detrended cells and returns
the lag of its strongest local peak, if that peak is strong (``acf_min``) and stands clear of
the trough before it (``contrast``): a random walk or a trend has a slowly falling
autocorrelation with no such peak, so no period is claimed for it. Among the strongest peaks,
the lag whose profile explains most of the variance (adjusted for its number of bins) wins:
a period's multiples peak about as high but explain no more, unless there is more to explain
(a weekly pattern over a daily one).
The peak is refined to a fractional lag, and :func:`snap_period` rounds a period within 3% of
an hour, a day, a week or a year to it (the cycles of people and of the sun are exact).

>>> cells = np.tile([0.0, 1.0, 4.0, 9.0, 4.0, 1.0], 40) + 0.1 * np.sin(np.arange(240))
>>> round(find_period(cells), 2)
6.0
>>> find_period(np.cumsum(np.random.default_rng(0).normal(size=240)))
0.0
"""

from __future__ import annotations

from typing import Final

import numpy as np

from processing.detectors._private import FloatArray

__all__ = ["MIN_LAG", "find_period", "initial_profile", "snap_period"]

MIN_LAG: Final = 4
"""Shortest period found, in cells."""
_MIN_CYCLES: Final = 3
_CANDIDATES: Final = 8
_CALENDAR_S: Final = (3600.0, 86_400.0, 604_800.0, 31_556_952.0)


def _filled(cells: FloatArray) -> FloatArray | None:
    ok = np.isfinite(cells)
    if ok.sum() < _MIN_CYCLES * MIN_LAG * 2:
        return None
    index = np.arange(cells.size, dtype=np.float64)
    filled = np.interp(index, index[ok], cells[ok])
    slope, intercept = np.polyfit(index, filled, 1)
    detrended: FloatArray = filled - (slope * index + intercept)
    return detrended


def autocorrelation(x: FloatArray) -> FloatArray:
    """Unbiased autocorrelation of ``x`` (mean removed) at lags ``0 .. len(x) - 1``."""
    n = x.size
    centred = x - x.mean()
    spectrum = np.fft.rfft(centred, 2 * n)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), 2 * n)[:n]
    if acov[0] <= 0:
        return np.zeros(n)
    acf: FloatArray = acov / acov[0] * n / (n - np.arange(n))
    return acf


def find_period(
    cells: FloatArray,
    *,
    acf_min: float = 0.4,
    contrast: float = 0.3,
    explained_min: float = 0.2,
    tie: float = 0.02,
) -> float:
    """The period of ``cells`` in (fractional) cells, 0 when there is none worth using.

    Args:
        cells: the history on a regular grid, oldest first (NaN = empty cell).
        acf_min: the smallest autocorrelation accepted at the period.
        contrast: how far the peak must rise above the lowest point before it.
        explained_min: the least share of variance the period's profile must explain.
        tie: candidates whose explained share is within this of the best count as equally
            good (the shortest wins).
    """
    x = _filled(cells)
    if x is None:
        return 0.0
    acf = autocorrelation(x)
    top = x.size // _MIN_CYCLES
    if top <= MIN_LAG + 1:
        return 0.0
    lags = np.arange(MIN_LAG, top)
    peak = (acf[lags] >= acf[lags - 1]) & (acf[lags] >= acf[lags + 1])
    trough = np.minimum.accumulate(acf[1:top])[lags - 1]
    good = peak & (acf[lags] >= acf_min) & (acf[lags] - trough >= contrast)
    if not good.any():
        return 0.0
    candidates = lags[good][np.argsort(acf[lags[good]])[::-1][:_CANDIDATES]]
    explained = np.array([_explained(x, int(lag)) for lag in candidates])
    best = float(explained.max())
    if best < explained_min:
        return 0.0
    chosen = int(candidates[explained >= best - tie].min())
    return _refine(acf, chosen)


def _explained(x: FloatArray, lag: int) -> float:
    """Share of ``x``'s variance a profile of ``lag`` bins explains, adjusted for its bins."""
    phase = np.arange(x.size) % lag
    counts = np.bincount(phase, minlength=lag)
    means = np.bincount(phase, weights=x, minlength=lag) / np.maximum(counts, 1)
    residual = x - means[phase]
    total = float(np.var(x))
    if total <= 0 or x.size <= lag + 1:
        return 0.0
    r2 = 1.0 - float(np.var(residual)) / total
    return 1.0 - (1.0 - r2) * (x.size - 1) / (x.size - lag - 1)


def _refine(acf: FloatArray, lag: int) -> float:
    """The peak's fractional lag (a parabola through its neighbourhood)."""
    half = max(1, lag // 25)
    lo, hi = max(1, lag - half), min(acf.size - 1, lag + half + 1)
    x = np.arange(lo, hi, dtype=np.float64)
    a, b, _ = np.polyfit(x - lag, acf[lo:hi], 2)
    shift = -b / (2 * a) if a < 0 else 0.0
    return float(lag + float(np.clip(shift, -half, half)))


def snap_period(period_s: float, tolerance: float = 0.03) -> float:
    """``period_s``, or the calendar period (hour, day, week, year) it is within 3% of."""
    for calendar in _CALENDAR_S:
        if abs(period_s - calendar) <= tolerance * calendar:
            return calendar
    return period_s


def initial_profile(
    cells: FloatArray, first_cell: float, period_cells: float, bins: int
) -> tuple[FloatArray, FloatArray]:
    """Per-bin mean offsets of ``cells`` from their trend, and how many cells fed each bin.

    Args:
        cells: the history on the grid, oldest first (NaN = empty).
        first_cell: absolute grid index of ``cells[0]``.
        period_cells: the period, in cells.
        bins: bins per period.
    """
    profile, counts = np.zeros(bins), np.zeros(bins)
    x = _filled(cells)
    if x is None:
        return profile, counts
    ok = np.isfinite(cells)
    absolute = first_cell + np.arange(cells.size)
    which = np.minimum((np.mod(absolute, period_cells) / period_cells * bins).astype(np.intp),
                       bins - 1)  # fmt: skip
    np.add.at(profile, which[ok], x[ok])
    np.add.at(counts, which[ok], 1.0)
    profile = np.where(counts > 0, profile / np.maximum(counts, 1.0), 0.0)
    seen = counts > 0
    if seen.any():
        profile[seen] -= profile[seen].mean()
    return profile, counts
