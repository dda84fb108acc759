"""``hanoi-ioc evaluate``: score detection against the simulator's ground truth.

A scenario runs through the *real* pipeline (simulator → MQTT → ingest → PostgreSQL, and
MQTT → processing → alerts), then the alerts stored in the database are matched against the
simulator's labels and a report is written. One concept per module:

- :mod:`~hanoi_ioc.evaluate.runner` — running a scenario on real services (async shell);
- :mod:`~hanoi_ioc.evaluate.store` — reading alerts and series back from the database;
- :mod:`~hanoi_ioc.evaluate.matching` — matching alerts to labels, precision, recall and
  detection delay per kind (pure; the matching rules are documented there);
- :mod:`~hanoi_ioc.evaluate.lead_time` — flood-alert lead time before 30 cm (pure);
- :mod:`~hanoi_ioc.evaluate.targets` — the issue's targets, pass or fail (pure);
- :mod:`~hanoi_ioc.evaluate.panels` / :mod:`~hanoi_ioc.evaluate.plots` — what to plot, and
  the PNGs (matplotlib, Agg);
- :mod:`~hanoi_ioc.evaluate.report` — ``report.html`` and ``report.json``;
- :mod:`~hanoi_ioc.evaluate.command` — the command line.
"""

from hanoi_ioc.evaluate.assessment import Assessment, assess
from hanoi_ioc.evaluate.command import labelled_scenarios, main
from hanoi_ioc.evaluate.lead_time import FloodLead, LeadConfig, flood_lead_times
from hanoi_ioc.evaluate.matching import KINDS, KindScore, KindSpec, Scoring, score_alerts
from hanoi_ioc.evaluate.records import AlertTimeline, RunResult, Series
from hanoi_ioc.evaluate.runner import EvaluationError, RunSpec, run_scenario
from hanoi_ioc.evaluate.targets import TargetResult, judge_targets

__all__ = [
    "KINDS",
    "AlertTimeline",
    "Assessment",
    "EvaluationError",
    "FloodLead",
    "KindScore",
    "KindSpec",
    "LeadConfig",
    "RunResult",
    "RunSpec",
    "Scoring",
    "Series",
    "TargetResult",
    "assess",
    "flood_lead_times",
    "judge_targets",
    "labelled_scenarios",
    "main",
    "run_scenario",
    "score_alerts",
]
