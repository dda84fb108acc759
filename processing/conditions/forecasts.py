"""Flood early warnings: "this street will reach a flood level within the lead time" (pure).

The derived series (:mod:`processing.derived`) keeps a nowcast per hotspot; for every depth
reading the nowcast as of its measurement time says when each flood level is expected. A
level expected within ``lead_time_s`` becomes a condition ``flood_forecast:<hotspot>``,
raised before the level is crossed; the warning clears once no level is expected soon.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Final

from contract import Quantity, Reading, Station, hanoi_time
from processing.alerts import Severity
from processing.alerts.wording import Place, number_en, number_vi
from processing.conditions.base import Condition, Phase, RuleSpec, Step, Texts
from processing.derived import DerivedSeries
from processing.indices.flood import FloodLevel
from processing.nowcast import FloodNowcast, LevelEta

__all__ = ["FORECAST_RULE", "ForecastSource"]

FORECAST_RULE: Final = "flood_forecast"
"""Rule name (and dedup-key prefix) of the flood early warnings."""
_FORECAST_SEVERITY: Final = {
    FloodLevel.WATCH: Severity.MINOR,
    FloodLevel.WARNING: Severity.MODERATE,
    FloodLevel.SEVERE: Severity.SEVERE,
    FloodLevel.EXTREME: Severity.EXTREME,
}


class ForecastSource:
    """Early-warning conditions from the hotspots' nowcasts.

    Args:
        derived: the derived series holding the nowcasts (it must have observed the
            slice's readings first).
        lead_time_s: how far ahead a flood level must be expected to warn now.
    """

    rules: Final = (
        RuleSpec(
            FORECAST_RULE, "event", "Dự báo ngập", "Flood forecast", public=True, forecast=True,
            instruction_vi="Chuẩn bị phân luồng giao thông; người dân tránh đi vào khu vực, "
            "kê cao đồ đạc và di chuyển xe ra khỏi chỗ trũng; theo dõi các bản tin cập nhật.",
            instruction_en="Prepare traffic diversions; avoid the area, raise belongings and "
            "move vehicles out of low-lying spots; follow the updates.",
        ),
    )  # fmt: skip
    phase: Final[Phase] = "slice"

    def __init__(self, derived: DerivedSeries, *, lead_time_s: float = 1800.0) -> None:
        self.derived = derived
        self.lead_time_s = lead_time_s

    def conditions(self, step: Step) -> list[Condition]:
        """The slice's early warnings."""
        return self.forecasts(step.readings, step.stations, step.watched)

    def forecasts(
        self,
        readings: Iterable[Reading],
        stations: Mapping[str, Station],
        open_keys: Collection[str],
    ) -> list[Condition]:
        """Early-warning conditions, one per depth reading, each as of its measurement time.

        A nowcast at a reading's time uses only data measured up to that time (later points
        in the window are left out), so the verdicts do not depend on how the stream was
        cut into batches.
        """
        depths = sorted(
            (r for r in readings if r.quantity is Quantity.WATER_DEPTH),
            key=lambda r: r.measured_at,
        )
        out: list[Condition] = []
        for reading in depths:
            hotspot = reading.station_id
            cast = self.derived.nowcast(hotspot, reading.measured_at.timestamp())
            if cast is None:
                continue
            key = f"{FORECAST_RULE}:{hotspot}"
            subject = Condition.subject_of(reading)
            warnings = cast.warnings(self.lead_time_s)
            if not warnings:
                if key in open_keys:
                    out.append(Condition(key, FORECAST_RULE, "event", subject,
                                         reading.measured_at, reading.value, None,
                                         True))  # fmt: skip
                continue
            worst = warnings[-1]
            station = stations.get(hotspot)
            out.append(
                Condition(
                    key, FORECAST_RULE, "event", subject, reading.measured_at, reading.value,
                    _FORECAST_SEVERITY[worst.level], False, worst.depth_cm,
                    _forecast_texts(cast, worst, reading, station),
                    f"{FORECAST_RULE}:{station.district if station else '?'}",
                    {"eta_min": round((worst.eta_s or 0) / 60, 1), "level": worst.level.value,
                     "rate_cm_h": round(cast.rate_cm_h, 1),
                     "confidence": round(cast.confidence, 2),
                     "rain_mm_h": None if cast.rain_mm_h is None else round(cast.rain_mm_h, 1),
                     **self.rules[0].instructions()},
                )
            )  # fmt: skip
        return out


def _minutes(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 60:.0f}"


def _forecast_texts(
    cast: FloodNowcast, eta: LevelEta, reading: Reading, station: Station | None
) -> Texts:
    place = Place.of(station, reading.station_id)
    local = hanoi_time(reading.measured_at)
    window = f"{_minutes(eta.eta_early_s)}–{_minutes(eta.eta_late_s)}"
    target_vi, target_en = number_vi(eta.depth_cm, 0), number_en(eta.depth_cm, 0)
    rain_vi = rain_en = ""
    if cast.rain_mm_h is not None:
        rain_vi = f", mưa thượng nguồn {number_vi(cast.rain_mm_h, 0)} mm/h"
        rain_en = f", upstream rain {number_en(cast.rain_mm_h, 0)} mm/h"
    return (
        f"Dự báo ngập {target_vi} cm: {place.name}",
        f"Flood forecast {target_en} cm: {place.name}",
        f"Lúc {local} (giờ Hà Nội) độ sâu ngập tại {place.in_district} là "
        f"{number_vi(cast.depth_cm)} cm, đang dâng {number_vi(cast.rate_cm_h, 0)} cm/h"
        f"{rain_vi}; dự kiến đạt {target_vi} cm sau khoảng {_minutes(eta.eta_s)} phút "
        f"(trong {window} phút tới).",
        f"At {local} (Hanoi time) the flood depth at {place.in_district} is "
        f"{number_en(cast.depth_cm)} cm, rising {number_en(cast.rate_cm_h, 0)} cm/h{rain_en}; "
        f"expected to reach {target_en} cm in about {_minutes(eta.eta_s)} min (within "
        f"{window} min).",
    )
