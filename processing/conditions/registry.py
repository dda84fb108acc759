"""The rule registry: every condition source of the live configuration, in one place.

The engine runs :func:`default_sources`; :data:`RULES` names every rule they can raise, and
the evaluator (which rules exist), the public feeds (which rules are public hazards, and
forecasts) and the ops API read it from here, so adding a rule family is adding a source
to this list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from processing.conditions.air_quality import AirQualitySource
from processing.conditions.base import ConditionSource, RuleSpec
from processing.conditions.clock import ClockWatch
from processing.conditions.forecasts import ForecastSource
from processing.conditions.incidents import IncidentWatch
from processing.conditions.lanes import LaneSource
from processing.conditions.operations import OperationsWatch
from processing.conditions.rainfall import RainAccumulator
from processing.conditions.silence import SilenceWatch
from processing.conditions.thresholds import DEFAULT_RULES, ThresholdRule, ThresholdSource
from processing.derived import DerivedSeries

__all__ = ["RULES", "Sources", "default_sources", "rules_of"]


@dataclass(frozen=True, slots=True)
class Sources:
    """The engine's condition sources, by phase.

    Args:
        per_slice: asked on every slice of measurement time, in this order (conditions of
            one event time are stepped in this order).
        silence: asked after the event-time watermark moved.
        clock: asked once per batch, on its arrivals.
    """

    per_slice: tuple[ConditionSource, ...]
    silence: SilenceWatch
    clock: ClockWatch

    @property
    def all(self) -> tuple[ConditionSource, ...]:
        """Every source."""
        return (*self.per_slice, self.silence, self.clock)


def default_sources(
    derived: DerivedSeries,
    *,
    rules: Sequence[ThresholdRule] = DEFAULT_RULES,
    lead_time_s: float = 1800.0,
    min_silence_s: float = 300.0,
) -> Sources:
    """The live configuration's sources.

    Args:
        derived: the derived series the flood forecasts read.
        rules: threshold rules.
        lead_time_s: how far ahead a flood level must be expected to warn now.
        min_silence_s: shortest gap ever called a silent sensor.
    """
    return Sources(
        per_slice=(
            ThresholdSource(rules),
            LaneSource("reading"),
            ForecastSource(derived, lead_time_s=lead_time_s),
            AirQualitySource(),
            RainAccumulator(),
            IncidentWatch(),
            LaneSource("hourly"),
        ),
        silence=SilenceWatch(min_silence_s=min_silence_s),
        clock=ClockWatch(),
    )


def rules_of(sources: Iterable[ConditionSource]) -> dict[str, RuleSpec]:
    """Every rule the sources can raise, by name."""
    return {spec.name: spec for source in sources for spec in source.rules}


RULES: Final[Mapping[str, RuleSpec]] = {
    **rules_of(default_sources(DerivedSeries()).all),
    **{spec.name: spec for spec in OperationsWatch.rules},
}
"""Every rule the live configuration can raise (the engine's, and the operations watch's)."""
