"""Offline tools: detectors run on series that are not the live stream, strictly streaming.

- :mod:`processing.offline.backtest`: one detector over a stored or CSV series
  (``hanoi-ioc backtest``), the same detector code as the live service, no look-ahead;
  :mod:`~processing.offline.series_csv` and :mod:`~processing.offline.stored` read them;
- :mod:`processing.offline.corpus`: families of synthetic series (constant, quantised,
  zero-inflated counts, heavy-tailed noise, random walk, trend, daily and weekly patterns,
  irregular sampling, ...) with and without injected anomalies (spike, level shift, variance
  change, flat segment, pattern change), plus the real, unlabelled series statsmodels ships;
- :mod:`processing.offline.peers`: the detectors we are measured against (a windowed
  Gaussian, river's streaming anomaly detectors) and ours, each as a stream scorer;
- :mod:`processing.offline.harness`: scores every detector on the corpus, strictly streaming,
  and reports per family the false flags per 1000 points, recall, detection delay and F1
  (``python -m processing.offline.harness``).

Everything is seeded: the same command gives the same table.
"""
