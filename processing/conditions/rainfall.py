"""Heavy-rain alerts from the rain gauges' trailing accumulation (pure).

Hanoi's drainage rule of thumb (domain reference §6.1, [V] Hanoi Drainage Co. statements):
under 50 mm in two hours the streets stay dry, 50–100 mm floods the known hotspots, over
100 mm overloads the system. Each gauge's rain over the trailing ``window_s`` (two hours)
becomes a condition ``heavy_rain:<gauge>``:

- ≥ 20 mm minor ("Mưa lớn / Heavy rain": 10 mm/h kept up for two hours, the lower bound of
  "heavy" in the WMO-style hourly scale the reference suggests, §6.2 [U]; it warns before
  the 50 mm the drains are known to fail at), ≥ 50 mm moderate, ≥ 100 mm severe;
- back to normal under 10 mm.

A reading never counts for more than ``max_rain_mm_h`` over its interval (a gauge glitch of
+30 mm in one minute is not a cloudburst), as in the flood nowcast.

>>> from datetime import UTC, datetime, timedelta
>>> from contract import Quantity, Reading, StationId
>>> acc = RainAccumulator()
>>> t0 = datetime(2025, 9, 30, tzinfo=UTC)
>>> out = []
>>> for m in range(40):  # 1.5 mm a minute: 90 mm/h
...     at = t0 + timedelta(minutes=m)
...     out += acc.judge([Reading(StationId("rg-x"), Quantity.RAINFALL, 1.5, at, at)], {})
>>> [(c.severity.value, c.value) for c in out if c.severity][:1]
[('minor', 21.0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from contract import Quantity, Reading, Station, hanoi_time
from processing.alerts import Severity
from processing.alerts.wording import Figure, Place, number_en, number_vi
from processing.conditions.base import (
    NO_TEXTS,
    Condition,
    Level,
    Phase,
    RuleSpec,
    Step,
    Subject,
    Texts,
)
from processing.nowcast import MAX_RAIN_MM_H
from processing.windows import TimeWindow

__all__ = ["HEAVY_RAIN_RULE", "RainAccumulator", "RainConfig"]

HEAVY_RAIN_RULE: Final = "heavy_rain"
_GAUGE_VI: Final = "Trạm đo mưa"
_FIGURES_MAX: Final = 4096
_S_PER_H: Final = 3600.0
_DEFAULT_INTERVAL_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class RainConfig:
    """Thresholds of the heavy-rain alert.

    Args:
        window_s: trailing accumulation window.
        levels: accumulations (mm) and severities, mildest first.
        normal_below_mm: back to normal under this accumulation.
        max_rain_mm_h: plausibility cap of one reading's intensity [U].
    """

    window_s: float = 2 * _S_PER_H
    levels: tuple[Level, ...] = (
        Level(20.0, Severity.MINOR, "Mưa lớn", "Heavy rain"),
        Level(50.0, Severity.MODERATE, "Mưa lớn, nguy cơ ngập", "Heavy rain, flooding likely"),
        Level(100.0, Severity.SEVERE, "Mưa rất lớn, quá tải thoát nước",
              "Very heavy rain, drains overloaded"),
    )  # fmt: skip
    normal_below_mm: float = 10.0
    max_rain_mm_h: float = MAX_RAIN_MM_H


class RainAccumulator:
    """Trailing rain per gauge (bounded windows) and the heavy-rain conditions it implies.

    Args:
        config: thresholds.
    """

    def __init__(self, config: RainConfig | None = None) -> None:
        self.config = config or RainConfig()
        self._windows: dict[str, TimeWindow] = {}
        self._figures: dict[tuple[str, str | None, str | None], Figure] = {}

    def _add(self, reading: Reading) -> float:
        window = self._windows.get(reading.station_id)
        if window is None:
            window = self._windows[reading.station_id] = TimeWindow(self.config.window_s)
        when = reading.measured_at.timestamp()
        window.append_amount(when, reading.value, self.config.max_rain_mm_h, _DEFAULT_INTERVAL_S)
        times, values = window.since(when - self.config.window_s + 1e-6)
        return round(float(values[times <= when].sum()), 1)

    rules: Final = (
        RuleSpec(
            HEAVY_RAIN_RULE, "event", "Mưa lớn", "Heavy rain", public=True,
            instruction_vi="Đề phòng ngập tại các điểm trũng phía hạ lưu; hạn chế ra đường, "
            "không đi vào chỗ nước sâu hoặc chảy xiết; theo dõi các bản tin cập nhật.",
            instruction_en="Expect flooding at the low-lying spots downstream; limit travel, "
            "keep out of deep or fast-flowing water; follow the updates.",
        ),
    )  # fmt: skip
    phase: Final[Phase] = "slice"

    def conditions(self, step: Step) -> list[Condition]:
        """The heavy-rain conditions of a slice."""
        return self.judge(step.readings, step.stations)

    def judge(
        self, readings: Iterable[Reading], stations: Mapping[str, Station]
    ) -> list[Condition]:
        """One condition per rainfall reading, in the order given (other quantities: none)."""
        out = []
        for reading in readings:
            if reading.quantity is not Quantity.RAINFALL:
                continue
            total = self._add(reading)
            level = None
            for candidate in self.config.levels:
                if total >= candidate.threshold:
                    level = candidate
            station = stations.get(reading.station_id)
            out.append(
                Condition(
                    f"{HEAVY_RAIN_RULE}:{reading.station_id}", HEAVY_RAIN_RULE, "event",
                    Subject(reading.station_id, Quantity.RAINFALL), reading.measured_at, total,
                    None if level is None else level.severity,
                    total < self.config.normal_below_mm,
                    None if level is None else level.threshold,
                    NO_TEXTS if level is None else self._texts(level, reading, total, station),
                    f"{HEAVY_RAIN_RULE}:{station.district if station else '?'}",
                    {} if level is None else {"rain_2h_mm": total, **self.rules[0].instructions()},
                    figure=self._figure(reading, station),
                )
            )  # fmt: skip
        return out

    def _figure(self, reading: Reading, station: Station | None) -> Figure:
        """The figure of a gauge (every reading: a restored alert follows the next one)."""
        key = (reading.station_id, station.name if station else None,
               station.district if station else None)  # fmt: skip
        figure = self._figures.get(key)
        if figure is None:
            if len(self._figures) >= _FIGURES_MAX:
                self._figures.clear()
            hours = f"{self.config.window_s / _S_PER_H:g}"
            figure = self._figures[key] = Figure(
                f"Lượng mưa {hours} giờ", f"Rain over {hours} h", "mm",
                _gauge(Place.of(station, reading.station_id)), step=5.0, decimals=0,
            )  # fmt: skip
        return figure

    def _texts(
        self, level: Level, reading: Reading, total: float, station: Station | None
    ) -> Texts:
        place = Place.of(station, reading.station_id)
        local = hanoi_time(reading.measured_at)
        hours = f"{self.config.window_s / _S_PER_H:g}"
        limit_vi, limit_en = number_vi(level.threshold, 0), number_en(level.threshold, 0)
        above_vi, above_en = ("đạt", "reaching") if total == level.threshold else ("vượt", "above")
        return (
            f"{level.name_vi}: {place.name}",
            f"{level.name_en}: {place.name}",
            f"{_gauge(place)} ghi nhận {number_vi(total, 0)} mm trong {hours} giờ qua "
            f"(đến {local}, giờ Hà Nội), {above_vi} ngưỡng {limit_vi} mm.",
            f"{_gauge_en(place)} measured {number_en(total, 0)} mm in the last {hours} h "
            f"(to {local}, Hanoi time), {above_en} {limit_en} mm.",
        )


def _gauge(place: Place) -> str:
    """``Trạm đo mưa Láng, Đống Đa`` (the kind once, whether the name says it or not)."""
    return Place(place.titled(_GAUGE_VI), place.district).in_district


def _gauge_en(place: Place) -> str:
    named = place.name if place.titled(_GAUGE_VI) == place.name else f"Rain gauge {place.name}"
    return Place(named, place.district).in_district
