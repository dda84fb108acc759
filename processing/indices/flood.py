"""Street flood-depth levels.

No official Vietnamese street-depth alert thresholds were found (domain reference §6.6, [U]):
the defaults are the **project's proposal** — watch ≥ 10 cm (kerb), warning ≥ 20 cm
(motorbikes stall), severe ≥ 30 cm (exhaust height, cars at risk), extreme ≥ 50 cm
(danger to pedestrians). Configure them with :class:`FloodLevels`; do not present them as
an official scale.

>>> classify_depth(24.0)
<FloodLevel.WARNING: 'warning'>
>>> classify_depth(18.5, previous=FloodLevel.WARNING, hysteresis_cm=2.0)
<FloodLevel.WARNING: 'warning'>
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from processing.errors import DetectorConfigError

__all__ = ["LEVEL_NAMES", "FloodLevel", "FloodLevels", "classify_depth", "level_rank"]


class FloodLevel(StrEnum):
    """Flood-depth levels, mildest first."""

    NONE = "none"
    WATCH = "watch"
    WARNING = "warning"
    SEVERE = "severe"
    EXTREME = "extreme"


_ORDER: Final = tuple(FloodLevel)

LEVEL_NAMES: Final = {
    FloodLevel.NONE: ("Không ngập", "No flooding"),
    FloodLevel.WATCH: ("Theo dõi", "Watch"),
    FloodLevel.WARNING: ("Cảnh báo", "Warning"),
    FloodLevel.SEVERE: ("Nguy hiểm", "Severe"),
    FloodLevel.EXTREME: ("Rất nguy hiểm", "Extreme"),
}
"""(Vietnamese, English) display names."""


def level_rank(level: FloodLevel) -> int:
    """0 for NONE up to 4 for EXTREME."""
    return _ORDER.index(level)


@dataclass(frozen=True, slots=True)
class FloodLevels:
    """Depth thresholds in cm (project proposal [U]; configurable).

    Args:
        watch_cm: depth at which a street is watched.
        warning_cm: depth of a warning.
        severe_cm: depth of a severe flood.
        extreme_cm: depth of an extreme flood.
    """

    watch_cm: float = 10.0
    warning_cm: float = 20.0
    severe_cm: float = 30.0
    extreme_cm: float = 50.0

    def __post_init__(self) -> None:
        depths = (self.watch_cm, self.warning_cm, self.severe_cm, self.extreme_cm)
        if not all(math.isfinite(d) for d in depths) or list(depths) != sorted(set(depths)):
            msg = f"flood levels must be finite and strictly increasing, got {depths}"
            raise DetectorConfigError(msg)

    def thresholds(self) -> tuple[tuple[FloodLevel, float], ...]:
        """(level, depth) pairs, mildest first (NONE excluded)."""
        return (
            (FloodLevel.WATCH, self.watch_cm),
            (FloodLevel.WARNING, self.warning_cm),
            (FloodLevel.SEVERE, self.severe_cm),
            (FloodLevel.EXTREME, self.extreme_cm),
        )

    def depth_of(self, level: FloodLevel) -> float | None:
        """The depth at which ``level`` starts (None for NONE)."""
        return dict(self.thresholds()).get(level)


def classify_depth(
    depth_cm: float,
    levels: FloodLevels | None = None,
    *,
    previous: FloodLevel | None = None,
    hysteresis_cm: float = 0.0,
) -> FloodLevel:
    """The level reached by ``depth_cm``.

    With ``previous`` and ``hysteresis_cm``, a level is kept until the depth falls more than
    ``hysteresis_cm`` below its threshold, so a depth hovering at a boundary does not flap.
    """
    chosen = levels or FloodLevels()
    if not math.isfinite(depth_cm):
        return previous or FloodLevel.NONE
    reached = FloodLevel.NONE
    for level, threshold in chosen.thresholds():
        if depth_cm >= threshold:
            reached = level
    if previous is not None and level_rank(previous) > level_rank(reached):
        kept = chosen.depth_of(previous)
        if kept is not None and depth_cm >= kept - hysteresis_cm:
            return previous
        for level, threshold in reversed(chosen.thresholds()):
            if level_rank(level) < level_rank(previous) and depth_cm >= threshold - hysteresis_cm:
                return level if level_rank(level) > level_rank(reached) else reached
    return reached
