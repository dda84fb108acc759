"""Ring buffers and rolling statistics, vectorised over many sensors.

Per-sensor windows live in 2-D arrays ``(capacity, width)`` owned by a detector (so they are
part of its snapshot); the functions here read and write them for a set of slots at once.
:class:`TimeWindow` is the scalar counterpart for one series (used by the flood nowcast).

>>> import numpy as np
>>> buf = np.full((2, 3), np.nan); pos = np.zeros(2); count = np.zeros(2)
>>> for v in (1.0, 2.0, 3.0, 4.0):
...     ring_push(buf, pos, count, np.array([0]), np.array([v]))
>>> ring_ordered(buf, pos, np.array([0, 1]))
array([[ 2.,  3.,  4.],
       [nan, nan, nan]])
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Collection, Iterator
from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from processing.errors import DetectorConfigError

__all__ = [
    "TimeWindow",
    "arrival_percentile",
    "nan_median_rows",
    "pair_indices",
    "ring_ordered",
    "ring_push",
    "theil_sen_interval",
    "theil_sen_rows",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_MAX_WINDOW_POINTS: Final = 100_000


def arrival_percentile(
    earlier: Collection[float], times: FloatArray, window: int, q: float, *, own: bool = True
) -> FloatArray:
    """For each of ``times`` (in arrival order), the ``q``-th percentile of the last arrivals.

    The window holds the ``window`` most recent values up to and including each one
    (``own=False``: the ``window`` before it, itself left out), continuing from ``earlier``
    (the previous arrivals, oldest first); NaN where the window is empty.

    >>> arrival_percentile([1.0, 2.0], np.array([3.0, 10.0]), 3, 50.0)
    array([2., 3.])
    >>> arrival_percentile([], np.array([5.0, 7.0, 9.0]), 2, 50.0, own=False)
    array([nan,  5.,  6.])
    """
    k = max(1, window)
    pad = k - 1 if own else k
    tail = np.asarray(earlier, dtype=np.float64)[max(0, len(earlier) - pad) :]
    padded = np.concatenate([np.full(pad - tail.size, np.nan), tail, times])
    if not own:
        padded = padded[:-1]
    windows = sliding_window_view(padded, k)[-times.size :] if times.size else np.empty((0, k))
    # Only the first windows of a stream hold padding: the rest go through np.percentile
    # at once (np.nanpercentile loops over rows in Python, 100 µs a row).
    gaps = np.isnan(windows).any(axis=1)
    out = np.empty(len(windows), dtype=np.float64)
    full = ~gaps
    if full.any():
        out[full] = np.percentile(windows[full], q, axis=1)
    if gaps.any():
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window is NaN
            out[gaps] = np.nanpercentile(windows[gaps], q, axis=1)
    return out


def ring_push(
    buf: FloatArray, pos: FloatArray, count: FloatArray, slots: IntArray, values: FloatArray
) -> None:
    """Append one value per slot to the per-slot rings (slots must be unique).

    Args:
        buf: ``(capacity, width)`` ring storage.
        pos: ``(capacity,)`` index of the next write (stored as float for snapshots).
        count: ``(capacity,)`` number of values held, at most ``width``.
        slots: the slots to append to, without repeats.
        values: one value per slot.
    """
    width = buf.shape[1]
    write = pos[slots].astype(np.intp)
    buf[slots, write] = values
    pos[slots] = (write + 1) % width
    count[slots] = np.minimum(count[slots] + 1.0, float(width))


def ring_ordered(buf: FloatArray, pos: FloatArray, slots: IntArray) -> FloatArray:
    """The rings of ``slots`` as rows ordered oldest to newest (unfilled entries stay NaN)."""
    width = buf.shape[1]
    start = pos[slots].astype(np.intp)
    columns = (start[:, None] + np.arange(width)[None, :]) % width
    ordered: FloatArray = buf[slots[:, None], columns]
    return ordered


def nan_median_rows(rows: FloatArray) -> FloatArray:
    """Median of each row ignoring NaN; NaN where a row has no finite value.

    >>> nan_median_rows(np.array([[1.0, np.nan, 3.0, 10.0], [np.nan] * 4]))
    array([ 3., nan])
    """
    if rows.shape[1] == 0:
        return np.full(rows.shape[0], np.nan)
    valid = np.isfinite(rows)
    if valid.all():
        full: FloatArray = np.median(rows, axis=1)
        return full
    n_valid = valid.sum(axis=1)
    ordered = np.sort(np.where(valid, rows, np.inf), axis=1)
    last = rows.shape[1] - 1
    low = np.clip((n_valid - 1) // 2, 0, last)[:, None]
    high = np.clip(n_valid // 2, 0, last)[:, None]
    median = 0.5 * (
        np.take_along_axis(ordered, low, axis=1)[:, 0]
        + np.take_along_axis(ordered, high, axis=1)[:, 0]
    )
    result: FloatArray = np.where(n_valid > 0, median, np.nan)
    return result


@cache
def pair_indices(width: int) -> tuple[IntArray, IntArray]:
    """Index pairs ``(i, j)`` with ``i < j`` over a window of ``width`` points."""
    first, second = np.triu_indices(width, 1)
    return first.astype(np.intp), second.astype(np.intp)


def theil_sen_rows(values: FloatArray, times_s: FloatArray) -> FloatArray:
    """Theil-Sen slope (median of pairwise slopes, units per second) of each row.

    Pairs with a missing value or a non-positive time step are ignored; a row with no usable
    pair gives NaN. One outlier among five points cannot move the slope much.

    >>> t = np.array([[0.0, 60.0, 120.0, 180.0, 240.0]])
    >>> float(theil_sen_rows(np.array([[1.0, 2.0, 90.0, 4.0, 5.0]]), t)[0] * 60)
    1.0
    """
    first, second = pair_indices(values.shape[1])
    dv = values[:, second] - values[:, first]
    dt = times_s[:, second] - times_s[:, first]
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = np.where(dt > 0, dv / np.where(dt > 0, dt, 1.0), np.nan)
    return nan_median_rows(slopes)


def theil_sen_interval(
    times_s: FloatArray, values: FloatArray, z: float
) -> tuple[float, float, float]:
    """Theil-Sen slope of one series with Sen's (1968) confidence interval.

    The same result as ``scipy.stats.theilslopes(values, times_s, alpha)`` with
    ``z = norm.ppf(alpha / 2)`` (ties corrected as in Sen's eq. 2.6), without its per-call
    overhead (~1 ms): the flood nowcast runs it on every depth reading.

    Returns:
        (slope, low, high) in value units per second; NaN bounds when the interval is not
        defined.

    >>> t = np.array([0.0, 60.0, 120.0, 180.0, 240.0])
    >>> [round(s * 60, 3) for s in theil_sen_interval(t, np.array([1.0, 2, 3.5, 4, 5]), -1.6449)]
    [1.0, 0.75, 1.25]
    """
    dx = times_s[:, np.newaxis] - times_s
    dy = values[:, np.newaxis] - values
    up = dx > 0
    slopes = np.sort(dy[up] / dx[up])
    if not slopes.size:
        return math.nan, math.nan, math.nan
    slope = float(np.median(slopes))
    n, nt = len(values), len(slopes)
    ties = _tie_term(times_s) + _tie_term(values)
    sigsq = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    if not sigsq >= 0:
        return slope, math.nan, math.nan
    sigma = math.sqrt(sigsq)
    upper = min(round((nt - z * sigma) / 2.0), nt - 1)
    lower = max(round((nt + z * sigma) / 2.0) - 1, 0)
    if not (0 <= lower < nt and 0 <= upper < nt):
        return slope, math.nan, math.nan
    return slope, float(slopes[lower]), float(slopes[upper])


def _tie_term(values: FloatArray) -> float:
    """Sen's tie correction: the sum of k(k-1)(2k+5) over groups of k equal values."""
    _, counts = np.unique(values, return_counts=True)
    k = counts[counts > 1].astype(np.float64)
    return float(np.sum(k * (k - 1) * (2 * k + 5)))


class TimeWindow:
    """A bounded series of ``(time_s, value)`` points covering at most ``span_s`` seconds.

    Points older than ``span_s`` before the newest one are dropped, and so is the oldest point
    when ``max_points`` is reached (the overflow behaviour). Out-of-order points are dropped.

    Args:
        span_s: how much history to keep, in seconds.
        max_points: hard bound on the number of points kept.

    >>> w = TimeWindow(span_s=120.0)
    >>> for t in (0.0, 60.0, 120.0, 180.0):
    ...     w.append(t, t / 60)
    >>> w.times().tolist(), len(w)
    ([60.0, 120.0, 180.0], 3)
    """

    def __init__(self, span_s: float, max_points: int = 4096) -> None:
        if not (np.isfinite(span_s) and span_s > 0) or not 0 < max_points <= _MAX_WINDOW_POINTS:
            msg = f"TimeWindow needs span_s > 0 and 0 < max_points <= {_MAX_WINDOW_POINTS}"
            raise DetectorConfigError(msg)
        self.span_s = float(span_s)
        self._points: deque[tuple[float, float]] = deque(maxlen=max_points)
        self.dropped_out_of_order = 0

    def append(self, time_s: float, value: float) -> None:
        """Add a point (ignored when older than the newest point or not finite)."""
        if not (np.isfinite(time_s) and np.isfinite(value)):
            return
        if self._points and time_s < self._points[-1][0]:
            self.dropped_out_of_order += 1
            return
        self._points.append((float(time_s), float(value)))
        horizon = time_s - self.span_s
        while self._points and self._points[0][0] < horizon:
            self._points.popleft()

    def append_amount(
        self, time_s: float, amount: float, max_per_h: float, min_span_s: float = 60.0
    ) -> float:
        """Add an amount accumulated since the previous point (rain over a gauge's interval).

        It counts for at least 0 and at most ``max_per_h`` over the time since the previous
        point (never less than ``min_span_s``): a glitch of +30 mm in one minute is not a
        cloudburst. The first point's span is unknown: taken as given. Returns what was added.

        >>> w = TimeWindow(span_s=7200.0)
        >>> [w.append_amount(t, mm, max_per_h=200.0) for t, mm in ((0, 1.0), (60, 24.0))]
        [1.0, 3.3333333333333335]
        """
        amount = max(0.0, amount)
        if self._points:
            span_s = max(time_s - self._points[-1][0], min_span_s)
            amount = min(amount, max_per_h * span_s / 3600.0)
        self.append(time_s, amount)
        return amount

    def __len__(self) -> int:
        return len(self._points)

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return iter(self._points)

    def times(self) -> FloatArray:
        """Times of the points held, oldest first."""
        return np.array([t for t, _ in self._points], dtype=np.float64)

    def values(self) -> FloatArray:
        """Values of the points held, oldest first."""
        return np.array([v for _, v in self._points], dtype=np.float64)

    def since(self, start_s: float) -> tuple[FloatArray, FloatArray]:
        """Times and values of the points at or after ``start_s``."""
        pts = [(t, v) for t, v in self._points if t >= start_s]
        return (
            np.array([t for t, _ in pts], dtype=np.float64),
            np.array([v for _, v in pts], dtype=np.float64),
        )
