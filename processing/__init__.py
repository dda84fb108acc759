"""Processing: readings -> scores -> indices and alerts.

Detector contract (river style): ``learn_one``/``score_one`` plus a vectorised
``score_many``; scores lie in [0, 1], higher is more anomalous; a separate thresholder decides,
and confirmed anomalies do not train the baseline.
"""
