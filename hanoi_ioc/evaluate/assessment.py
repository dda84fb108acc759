"""Judging one run (pure): scores per kind, flood lead times, targets and the panels to plot.

>>> from datetime import UTC, datetime
>>> run = RunResult("s", "vi", "en", 0, datetime(2025, 1, 1, tzinfo=UTC),
...                 datetime(2025, 1, 2, tzinfo=UTC), {}, (), (), {}, 0, {}, 0.0)
>>> [t.verdict for t in assess(run).targets]
['n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a']
"""

from __future__ import annotations

from dataclasses import dataclass

from hanoi_ioc.evaluate.lead_time import FloodLead, LeadConfig, flood_lead_times
from hanoi_ioc.evaluate.matching import Scoring, score_alerts
from hanoi_ioc.evaluate.panels import Panel, select_panels, upstream_gauges
from hanoi_ioc.evaluate.records import RunResult
from hanoi_ioc.evaluate.targets import TargetResult, judge_targets

__all__ = ["Assessment", "assess"]


@dataclass(frozen=True, slots=True)
class Assessment:
    """Everything the report says about one run."""

    run: RunResult
    scoring: Scoring
    leads: tuple[FloodLead, ...]
    targets: tuple[TargetResult, ...]
    panels: tuple[Panel, ...]

    @property
    def failed(self) -> tuple[TargetResult, ...]:
        """Targets that apply and were missed."""
        return tuple(t for t in self.targets if t.passed is False)


def assess(run: RunResult, lead_config: LeadConfig | None = None) -> Assessment:
    """Score a run against its ground truth and judge the targets."""
    scoring = score_alerts(run.labels, run.alerts, run.interval_s)
    upstream = upstream_gauges(run.stations)
    intervals = {s: run.interval_s(s) for s in run.stations}
    leads = tuple(
        flood_lead_times(run.labels, run.alerts, run.series, upstream, intervals, lead_config)
    )
    targets = tuple(judge_targets(scoring, leads))
    panels = tuple(select_panels(run.labels, run.alerts, run.stations))
    return Assessment(run, scoring, leads, targets, panels)
