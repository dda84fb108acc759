"""Sensor noise as real instruments make it.

- :class:`AR1`: correlated noise, a stationary AR(1) process that continues across chunks;
- :func:`student_t`: heavy-tailed noise (glitches far more often than a normal law allows);
- :func:`quantise`: an instrument's resolution (few distinct values);
- :func:`zero_inflate`: counters that miss whole intervals (more zeros than Poisson);
- :class:`Maintenance`: service visits that leave a new calibration (a new normal).
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

__all__ = ["AR1", "Maintenance", "quantise", "student_t", "zero_inflate"]


@dataclass(slots=True)
class AR1:
    """A stationary AR(1) process with standard deviation ``sigma`` and time constant ``tau_s``.

    Successive calls to :meth:`sample` continue the same realisation, so a long period
    generated chunk by chunk is one smooth series.

    Args:
        sigma: stationary standard deviation.
        tau_s: correlation time in seconds (e-folding).
        step_s: spacing of the samples in seconds.
        state: the last value (drawn from the stationary law when None).
    """

    sigma: float
    tau_s: float
    step_s: float
    state: float | None = None

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        """The next ``n`` values of the process."""
        if self.state is None:
            self.state = float(rng.normal(0.0, self.sigma))
        if n == 0:
            return np.empty(0)
        phi = float(np.exp(-self.step_s / self.tau_s))
        shocks = rng.normal(0.0, self.sigma * np.sqrt(1.0 - phi * phi), n)
        out, _ = lfilter([1.0], [1.0, -phi], shocks, zi=[phi * self.state])
        values = np.asarray(out, dtype=np.float64)
        self.state = float(values[-1])
        return values


def student_t(
    rng: np.random.Generator, n: int, sd: float, df: float = 3.0
) -> npt.NDArray[np.float64]:
    """Heavy-tailed noise: Student's t, ``df`` degrees of freedom, standard deviation ``sd``.

    Low-cost sensors glitch far more often than a normal law allows (optical PM counters see a
    passing smoker, a gust of dust); ``df = 3`` keeps the standard deviation while putting one
    reading in about 200 beyond three of them, ten times the normal share.
    """
    if df <= 2:
        msg = f"df must exceed 2 for a finite standard deviation, got {df!r}"
        raise ValueError(msg)
    draws = rng.standard_t(df, n)
    return np.asarray(sd * np.sqrt((df - 2.0) / df) * draws, dtype=np.float64)


def quantise(values: npt.NDArray[np.float64], step: float) -> npt.NDArray[np.float64]:
    """Values as an instrument with resolution ``step`` reports them (e.g. whole µg/m³).

    >>> quantise(np.array([12.26, 12.74]), 0.5).tolist()
    [12.5, 12.5]
    """
    return np.asarray(np.round(values / step) * step, dtype=np.float64)


def zero_inflate(
    rng: np.random.Generator, counts: npt.NDArray[np.float64], p_zero: float
) -> npt.NDArray[np.float64]:
    """Counts, of which a share ``p_zero`` of intervals reads 0 (a loop that missed them all).

    ``counts`` may be 2-D (intervals x classes): a missed interval is 0 in every class.
    """
    missed = np.asarray(rng.random(counts.shape[0]) < p_zero)
    shape = (-1,) + (1,) * (counts.ndim - 1)
    return np.asarray(np.where(missed.reshape(shape), 0.0, counts), dtype=np.float64)


@dataclass(slots=True)
class Maintenance:
    """A sensor serviced now and then: each visit leaves a new calibration, a new normal.

    Visits arrive as a Poisson process (mean gap ``mean_gap_s``); after each, the sensor's
    gain is a fresh draw around 1 (``relative_sd``) and holds until the next visit. Successive
    calls continue the same history, so a long period generated chunk by chunk is one story.

    Args:
        mean_gap_s: mean time between visits.
        relative_sd: spread of the gain each visit leaves.
        gain: the current gain.
        next_visit_s: time of the next visit (drawn on first use when None).
    """

    mean_gap_s: float
    relative_sd: float
    gain: float = 1.0
    next_visit_s: float | None = None

    def gains(
        self, rng: np.random.Generator, t_s: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """The gain in force at each of ``t_s`` (increasing times)."""
        out = np.empty(len(t_s))
        if len(t_s) == 0:
            return out
        if self.next_visit_s is None:
            self.next_visit_s = float(t_s[0]) + float(rng.exponential(self.mean_gap_s))
        start = 0
        while True:
            stop = int(np.searchsorted(t_s, self.next_visit_s, side="left"))
            out[start:stop] = self.gain
            if stop >= len(t_s):
                return out
            self.gain = float(np.exp(rng.normal(0.0, self.relative_sd)))
            self.next_visit_s += float(rng.exponential(self.mean_gap_s))
            start = stop
