"""Real, unlabelled series from statsmodels' bundled datasets, with anomalies injected.

statsmodels ships a few long real series in its wheel (no download): the Mauna Loa CO2
record (weekly, 1958-2001, a yearly cycle on a trend, gaps), El Niño sea temperatures
(monthly, 1950-2010) and yearly sunspot activity (1700-2008, an 11-year cycle, a count-like
index). Each is used as it is (no labels: every flag counts as false, though a real series
may hold real surprises) and with one injected spike or level shift, sized in the series' own
robust step scale (the median absolute difference between neighbours).

statsmodels is a development dependency; this module imports it when called.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import numpy as np

from processing.offline.corpus import Anomaly, FloatArray, LabelledSeries

__all__ = ["real_corpus", "real_series"]

_YEAR_S: Final = 365.2425 * 86_400.0
_EPOCH_YEAR: Final = 1970.0


def _years_to_s(years: FloatArray) -> FloatArray:
    out: FloatArray = (years - _EPOCH_YEAR) * _YEAR_S
    return out


def real_series() -> dict[str, tuple[FloatArray, FloatArray]]:
    """``name -> (times_s, values)`` of each bundled series (missing values dropped)."""
    import statsmodels.api as sm  # a development dependency

    co2 = sm.datasets.co2.load_pandas().data["co2"].dropna()
    co2_t = co2.index.to_numpy(dtype="datetime64[s]").astype(np.int64).astype(np.float64)
    nino = sm.datasets.elnino.load_pandas().data
    months = nino.columns[1:]
    nino_years = np.repeat(nino["YEAR"].to_numpy(float), len(months))
    nino_t = _years_to_s(nino_years + np.tile(np.arange(len(months)) / 12.0, len(nino)))
    spots = sm.datasets.sunspots.load_pandas().data
    return {
        "co2": (co2_t, co2.to_numpy(float)),
        "elnino": (nino_t, nino[months].to_numpy(float).ravel()),
        "sunspots": (
            _years_to_s(spots["YEAR"].to_numpy(float)),
            spots["SUNACTIVITY"].to_numpy(float),
        ),
    }  # fmt: skip


def _step_scale(values: FloatArray) -> float:
    return float(max(np.median(np.abs(np.diff(values))), 1e-9))


def real_corpus(*, seeds: int = 1) -> Iterator[LabelledSeries]:
    """Each real series as it is, and with a spike and a level shift per seed."""
    for name, (times, values) in real_series().items():
        family = f"real:{name}"
        yield LabelledSeries(family, None, 0, times, values, ())
        scale = _step_scale(values)
        for seed in range(seeds):
            rng = np.random.default_rng([seed, len(name)])
            n = values.size
            start = int(rng.integers(int(0.4 * n), int(0.8 * n)))
            spiked = values.copy()
            spiked[start] += 10.0 * scale
            yield LabelledSeries(
                family, "spike", seed, times, spiked, (Anomaly("spike", start, start + 5),)
            )
            shifted = values.copy()
            shifted[start:] += 5.0 * scale
            window = Anomaly("level_shift", start, min(n, start + max(20, n // 20)))
            yield LabelledSeries(family, "level_shift", seed, times, shifted, (window,))
