"""The issue's targets, judged on one scenario's scores (pure).

- **Recall ≥ 0.95 at precision ≥ 0.9** for floods and for the West Lake oxygen crash;
- **median detection delay ≤ 2 sample intervals** for the same kinds;
- **flood alerts ≥ 10 minutes before a hotspot crosses 30 cm where the rain allows it**:
  every flood that gave a chance (:mod:`hanoi_ioc.evaluate.lead_time`) met it.

A target applies to a scenario only when the scenario holds something to judge: recall and
delay need labels of the kind, precision needs labels or alerts of the kind (a scenario
without floods but with flood alerts has precision 0: every one was a false alarm), the
lead time needs a flood that gave a chance. Otherwise the verdict is "n/a".

>>> TargetResult("x", "flood", "recall ≥ 0.95", 0.97, True).verdict
'pass'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from hanoi_ioc.evaluate.lead_time import FloodLead
from hanoi_ioc.evaluate.matching import Scoring

__all__ = ["TARGET_KINDS", "TargetResult", "judge_targets"]

TARGET_KINDS: Final = ("flood", "oxygen_crash")
MIN_RECALL: Final = 0.95
MIN_PRECISION: Final = 0.9
MAX_MEDIAN_DELAY_INTERVALS: Final = 2.0
MIN_LEAD_S: Final = 600.0


@dataclass(frozen=True, slots=True)
class TargetResult:
    """One target on one scenario.

    Args:
        name: short id (``flood.recall``).
        kind: the label kind judged.
        text: the target in words.
        value: the measured figure (None: nothing to measure).
        passed: the verdict (None: not applicable).
        note: why, when it helps.
    """

    name: str
    kind: str
    text: str
    value: float | None
    passed: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        """``pass``, ``FAIL`` or ``n/a``."""
        return "n/a" if self.passed is None else "pass" if self.passed else "FAIL"


def _kind_targets(scoring: Scoring, kind: str) -> list[TargetResult]:
    score = scoring.get(kind)
    if score is None:
        return [
            TargetResult(f"{kind}.{m}", kind, text, None, None, f"no {kind} in this scenario")
            for m, text in (
                ("recall", f"recall ≥ {MIN_RECALL}"),
                ("precision", f"precision ≥ {MIN_PRECISION}"),
                ("delay", f"median delay ≤ {MAX_MEDIAN_DELAY_INTERVALS:g} intervals"),
            )
        ]
    recall, precision = score.recall, score.precision
    delay = score.delay_median_intervals
    return [
        TargetResult(
            f"{kind}.recall", kind, f"recall ≥ {MIN_RECALL}", recall,
            None if recall is None else recall >= MIN_RECALL,
            f"{score.detected}/{score.expected} labels detected",
        ),
        TargetResult(
            f"{kind}.precision", kind, f"precision ≥ {MIN_PRECISION}", precision,
            None if precision is None else precision >= MIN_PRECISION,
            f"{score.true_alerts} true, {score.false_alerts} false alerts",
        ),
        TargetResult(
            f"{kind}.delay", kind, f"median delay ≤ {MAX_MEDIAN_DELAY_INTERVALS:g} intervals",
            delay, None if delay is None else delay <= MAX_MEDIAN_DELAY_INTERVALS,
            "" if delay is None else "negative: alerted before the label started",
        ),
    ]  # fmt: skip


def _lead_target(leads: Sequence[FloodLead]) -> TargetResult:
    text = f"flood alert ≥ {MIN_LEAD_S / 60:g} min before 30 cm where the rain allows it"
    chances = [lead for lead in leads if lead.has_chance]
    crossed = [lead for lead in leads if lead.verdict != "not_crossed"]
    if not chances:
        note = f"{len(crossed)} crossing(s), none with a chance" if crossed else "no 30 cm crossing"
        return TargetResult("flood.lead_time", "flood", text, None, None, note)
    met = [lead for lead in chances if lead.verdict == "met"]
    share = len(met) / len(chances)
    note = f"{len(met)}/{len(chances)} floods with a chance met it"
    skipped = len(crossed) - len(chances)
    if skipped:
        note += f"; {skipped} gave no chance (rain too sudden)"
    return TargetResult("flood.lead_time", "flood", text, share, len(met) == len(chances), note)


def judge_targets(scoring: Scoring, leads: Sequence[FloodLead]) -> list[TargetResult]:
    """Every target's verdict on one scenario."""
    out: list[TargetResult] = []
    for kind in TARGET_KINDS:
        out += _kind_targets(scoring, kind)
    out.append(_lead_target(leads))
    return out
