"""A labelled corpus of synthetic series, families of the shapes real telemetry takes.

Each family is a generator of an anomaly-free series: its times (epoch seconds), its values
and the noise scale anomalies are measured in. :func:`labelled_series` injects one anomaly of
a kind into a copy (after the first 40% of the series, so every detector has learnt) and
labels the window in which detecting it counts. The families and their noise are chosen to
break naive assumptions: few distinct values, mostly zeros, heavy tails, non-stationarity,
repeating patterns, irregular and disordered timestamps.

>>> s = labelled_series("quantised", "spike", seed=1, n=600)
>>> s.family, s.kind, len(s.anomalies), s.values.size
('quantised', 'spike', 1, 600)
>>> len(np.unique(labelled_series("quantised", None, seed=1, n=600).values)) < 30
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ANOMALY_KINDS",
    "FAMILIES",
    "Anomaly",
    "LabelledSeries",
    "corpus",
    "labelled_series",
]

FloatArray = npt.NDArray[np.float64]
T0: Final = 1_700_000_000.0
DAY_S: Final = 86_400.0
ANOMALY_KINDS: Final = ("spike", "level_shift", "variance", "flat", "pattern")


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One injected anomaly: its kind, first point and the end of its detection window."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class LabelledSeries:
    """A series of the corpus.

    Args:
        family: the generator.
        kind: the injected anomaly kind, None for an anomaly-free series.
        seed: the generator's seed.
        times_s: epoch seconds (not necessarily increasing: see ``irregular``).
        values: the values.
        anomalies: the labelled windows (empty when ``kind`` is None).
    """

    family: str
    kind: str | None
    seed: int
    times_s: FloatArray
    values: FloatArray
    anomalies: tuple[Anomaly, ...]

    @property
    def name(self) -> str:
        """``family/kind/seed``."""
        return f"{self.family}/{self.kind or 'none'}/{self.seed}"


@dataclass(frozen=True, slots=True)
class _Base:
    times_s: FloatArray
    clean: FloatArray
    noise: FloatArray
    scale: float
    period: int
    integer: bool = False


def _regular(n: int, step_s: float) -> FloatArray:
    return T0 + step_s * np.arange(n, dtype=np.float64)


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> FloatArray:
    shocks = rng.normal(0.0, sigma * np.sqrt(1 - phi * phi), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sigma)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def _daily_shape(times_s: FloatArray) -> FloatArray:
    hour = np.mod(times_s, DAY_S) / 3600.0
    morning = np.exp(-0.5 * ((hour - 8.0) / 1.5) ** 2)
    evening = np.exp(-0.5 * ((hour - 18.0) / 2.0) ** 2)
    return np.asarray(0.2 + morning + 0.8 * evening, dtype=np.float64)


def _constant(rng: np.random.Generator, n: int) -> _Base:
    level = float(rng.choice([0.0, 1.0, 42.0, 1013.25]))
    return _Base(_regular(n, 60.0), np.full(n, level), np.zeros(n), max(0.01 * level, 1.0), 0)


def _quantised(rng: np.random.Generator, n: int) -> _Base:
    clean = np.full(n, 37.0)
    return _Base(_regular(n, 300.0), clean, _ar1(rng, n, 0.7, 2.0), 2.0, 0, integer=True)


def _zero_counts(rng: np.random.Generator, n: int) -> _Base:
    counts = rng.poisson(2.0, n) * (rng.random(n) < 0.12)
    return _Base(_regular(n, 300.0), np.zeros(n), counts.astype(np.float64), 1.5, 0, True)


def _heavy_tailed(rng: np.random.Generator, n: int) -> _Base:
    return _Base(_regular(n, 60.0), np.full(n, 20.0), rng.standard_t(2.5, n), 1.0, 0)


def _random_walk(rng: np.random.Generator, n: int) -> _Base:
    walk = 100.0 + np.cumsum(rng.normal(0.0, 1.0, n))
    return _Base(_regular(n, 60.0), walk, np.zeros(n), 1.0, 0)


def _trend(rng: np.random.Generator, n: int) -> _Base:
    clean = 10.0 + np.linspace(0.0, 30.0, n)
    return _Base(_regular(n, 600.0), clean, rng.normal(0.0, 1.0, n), 1.0, 0)


def _ar_noise(rng: np.random.Generator, n: int) -> _Base:
    return _Base(_regular(n, 300.0), np.full(n, 80.0), _ar1(rng, n, 0.97, 3.0), 3.0 * 0.25, 0)


def _daily(rng: np.random.Generator, n: int) -> _Base:
    times = _regular(n, 300.0)
    clean = 100.0 + 40.0 * _daily_shape(times)
    return _Base(times, clean, _ar1(rng, n, 0.5, 2.0), 2.0, 288)


def _weekly(rng: np.random.Generator, n: int) -> _Base:
    times = _regular(n, 1800.0)
    weekend = np.mod(np.floor(times / DAY_S) + 3.0, 7.0) >= 5
    mean = 200.0 * _daily_shape(times) * np.where(weekend, 0.55, 1.0) + 20.0
    counts = rng.poisson(mean).astype(np.float64)
    return _Base(times, mean, counts - mean, float(np.sqrt(mean.mean())), 336, True)


def _square_wave(rng: np.random.Generator, n: int) -> _Base:
    del rng
    times = _regular(n, 300.0)
    hour = np.mod(times, DAY_S) / 3600.0
    clean = np.where((hour >= 6.0) & (hour < 18.0), 80.0, 20.0)
    return _Base(times, clean, np.zeros(n), 2.0, 288)


def _irregular(rng: np.random.Generator, n: int) -> _Base:
    gaps = rng.exponential(120.0, n)
    gaps[rng.random(n) < 0.01] *= 60.0  # outages of hours
    gaps[rng.random(n) < 0.02] = 0.0  # repeated timestamps
    times = T0 + np.cumsum(gaps)
    swap = np.flatnonzero(rng.random(n - 1) < 0.01)
    times[swap], times[swap + 1] = times[swap + 1], times[swap].copy()  # late arrivals
    return _Base(times, np.full(n, 55.0), _ar1(rng, n, 0.8, 1.5), 1.5, 0)


FAMILIES: Final[dict[str, Callable[[np.random.Generator, int], _Base]]] = {
    "constant": _constant,
    "quantised": _quantised,
    "zero_counts": _zero_counts,
    "heavy_tailed": _heavy_tailed,
    "random_walk": _random_walk,
    "trend": _trend,
    "ar_noise": _ar_noise,
    "daily": _daily,
    "weekly": _weekly,
    "square_wave": _square_wave,
    "irregular": _irregular,
}
"""Family name -> generator of an anomaly-free series."""

_SPIKE: Final = {"heavy_tailed": 40.0, "zero_counts": 10.0}
_SHIFT: Final = {"heavy_tailed": 6.0, "random_walk": 12.0, "ar_noise": 8.0}


def _inject(
    base: _Base, family: str, kind: str, rng: np.random.Generator
) -> tuple[FloatArray, Anomaly]:
    n = base.clean.size
    start = int(rng.integers(int(0.4 * n), int(0.8 * n)))
    window = max(50, n // 20)
    clean, noise, scale = base.clean.copy(), base.noise.copy(), base.scale
    sign = 1.0 if rng.random() < 0.5 or base.integer else -1.0
    end = start + window
    if kind == "spike":
        noise[start] += sign * _SPIKE.get(family, 10.0) * scale
        end = start + 5
    elif kind == "level_shift":
        clean[start:] += sign * _SHIFT.get(family, 4.0) * scale
    elif kind == "variance":
        extra = np.where(noise == 0, rng.normal(0.0, scale, n), noise * 3.0)
        noise[start:] = extra[start:]
    elif kind == "flat":
        length = max(60, n // 30)
        values = clean + noise
        stuck = values[start - 1]
        clean[start : start + length], noise[start : start + length] = stuck, 0.0
        end = start + length + 10  # the sensor coming back is the same event
    elif kind == "pattern":
        clean = _pattern_change(base, clean, start, scale)
    values = clean + noise
    if base.integer:
        values = np.maximum(np.round(values), 0.0)
    return values, Anomaly(kind, start, min(end, n))


def _pattern_change(base: _Base, clean: FloatArray, start: int, scale: float) -> FloatArray:
    if base.period:
        shifted = np.roll(base.clean, base.period // 4)
        clean[start:] = shifted[start:]
        return clean
    phase = np.arange(clean.size - start)
    clean[start:] += 3.0 * scale * np.sin(2 * np.pi * phase / 24.0)
    return clean


def labelled_series(family: str, kind: str | None, *, seed: int, n: int = 4000) -> LabelledSeries:
    """One series of ``family``, anomaly-free (``kind`` None) or with one anomaly of ``kind``.

    Raises:
        KeyError: for an unknown family or kind.
    """
    if kind is not None and kind not in ANOMALY_KINDS:
        raise KeyError(kind)
    salt = 0 if kind is None else 1 + ANOMALY_KINDS.index(kind)
    family_index = list(FAMILIES).index(family)
    rng = np.random.default_rng([seed, family_index, salt])
    base = FAMILIES[family](rng, n)
    if kind is None:
        values = base.clean + base.noise
        if base.integer:
            values = np.maximum(np.round(values), 0.0)
        return LabelledSeries(family, None, seed, base.times_s, values, ())
    values, anomaly = _inject(base, family, kind, rng)
    return LabelledSeries(family, kind, seed, base.times_s, values, (anomaly,))


def corpus(
    *, seeds: int = 2, n: int = 4000, families: tuple[str, ...] = ()
) -> Iterator[LabelledSeries]:
    """Every family: ``seeds`` anomaly-free series and ``seeds`` with each anomaly kind.

    A kind that makes no sense for a family (a flat segment in a constant) is left out.
    """
    for family in families or tuple(FAMILIES):
        for seed in range(seeds):
            yield labelled_series(family, None, seed=seed, n=n)
            for kind in ANOMALY_KINDS:
                if (family, kind) in _SKIPPED:
                    continue
                yield labelled_series(family, kind, seed=seed, n=n)


_SKIPPED: Final = frozenset({("constant", "flat"), ("square_wave", "flat")})
