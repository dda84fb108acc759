"""Air-quality alerts from the official hourly VN_AQI (pure).

A pollution episode lasts hours to days; what operators and the public act on is the
official index, not a one-minute sample. Every hourly VN_AQI row the derived series
computes (Decision 1459/QĐ-TCMT, NowCast for PM) becomes a condition ``air_quality:<station>``:

- VN_AQI 151–200 "Xấu / Bad" → moderate, 201–300 "Rất xấu / Very bad" → severe, 301+
  "Nguy hại / Hazardous" → extreme (Decision 1459 §1.2 levels; health advice of §1.8);
- back to normal at 100 or below ("Trung bình" or better): the "Kém / Poor" band 101–150
  neither raises nor clears, which is the hysteresis.

The alert names the dominant pollutant in its details; its value is the index (no unit).

>>> from datetime import UTC, datetime
>>> from processing.derived import IndexRow
>>> row = IndexRow(datetime(2025, 12, 10, 2, tzinfo=UTC), "aq-x", "VN_AQI", 187.0,
...                "Xấu / Bad", "pm25", {})
>>> [(c.dedup_key, c.severity.value) for c in aqi_conditions([row], {})]
[('air_quality:aq-x', 'moderate')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from contract import QUANTITIES, Quantity, Station, hanoi_time
from processing.alerts import Severity
from processing.alerts.wording import Figure, Place
from processing.conditions.base import NO_TEXTS, Condition, Phase, RuleSpec, Step, Subject
from processing.derived import IndexRow
from processing.indices.vn_aqi import LevelInfo, level_of, round_aqi

__all__ = ["AIR_QUALITY_RULE", "AirQualitySource", "aqi_conditions"]

AIR_QUALITY_RULE: Final = "air_quality"
_NORMAL_AT_MOST: Final = 100
_SEVERITY: Final = {"bad": Severity.MODERATE, "very_bad": Severity.SEVERE,
                    "hazardous": Severity.EXTREME}  # fmt: skip
_ADVICE: Final = {
    "bad": (
        "Mọi người hạn chế hoạt động mạnh ngoài trời; người già, trẻ em, phụ nữ mang thai và "
        "người có bệnh tim, phổi nên ở trong nhà.",
        "Everyone should cut strenuous outdoor activity; older people, children, pregnant "
        "women and people with heart or lung disease should stay indoors.",
    ),
    "very_bad": (
        "Hạn chế tối đa ra ngoài, đeo khẩu trang phù hợp khi ra ngoài.",
        "Keep outdoor time to a minimum; wear a proper mask outside.",
    ),
    "hazardous": (
        "Ở trong nhà, đóng cửa; đeo khẩu trang phù hợp nếu buộc phải ra ngoài.",
        "Stay indoors with doors and windows closed; wear a proper mask if you must go out.",
    ),
}


def _texts(
    row: IndexRow, info: LevelInfo, aqi: int, station: Station | None
) -> tuple[str, str, str, str]:
    place = Place.of(station, row.station_id)
    local = hanoi_time(row.time)
    try:
        pollutant = QUANTITIES[Quantity(row.dominant or "")]
        label_vi = pollutant.label_vi  # "Bụi PM2.5" is "bụi PM2.5" mid-sentence, "NO2" stays
        if label_vi[1:2].islower():
            label_vi = label_vi[:1].lower() + label_vi[1:]
        main_vi, main_en = f", chủ yếu do {label_vi}", f", mainly {pollutant.label_en}"
    except ValueError:
        main_vi = main_en = ""
    return (
        f"Chất lượng không khí {info.name_vi} (VN_AQI {aqi}): {place.name}",
        f"Air quality {info.name_en} (VN_AQI {aqi}): {place.name}",
        f"VN_AQI giờ tại {place.in_district} là {aqi} ({info.name_vi}) cho giờ kết thúc lúc "
        f"{local} (giờ Hà Nội){main_vi}.",
        f"The hourly VN_AQI at {place.in_district} is {aqi} ({info.name_en}) for the hour ending "
        f"{local} (Hanoi time){main_en}.",
    )


class AirQualitySource:
    """Hourly VN_AQI rows of the slice to air-quality conditions."""

    rules: Final = (
        RuleSpec(
            AIR_QUALITY_RULE, "event", "Chất lượng không khí", "Air quality", public=True,
            instruction_vi=_ADVICE["bad"][0], instruction_en=_ADVICE["bad"][1],
        ),
    )  # fmt: skip
    phase: Final[Phase] = "slice"

    def conditions(self, step: Step) -> list[Condition]:
        """One condition per VN_AQI row of the hours that closed."""
        return aqi_conditions(step.index_rows, step.stations)


def aqi_conditions(rows: Iterable[IndexRow], stations: Mapping[str, Station]) -> list[Condition]:
    """One condition per hourly VN_AQI row with a value (rows of other indices are ignored)."""
    out: list[Condition] = []
    for row in rows:
        if row.index != "VN_AQI" or row.value is None:
            continue
        aqi = round_aqi(row.value)
        info = level_of(aqi)
        severity = _SEVERITY.get(info.level.value)
        station = stations.get(row.station_id)
        district = station.district if station else "?"
        details: dict[str, str | float | int | bool | None] = {
            "index": "VN_AQI", "level": info.level.value, "dominant": row.dominant,
        }  # fmt: skip
        if severity is not None:
            details["instruction_vi"], details["instruction_en"] = _ADVICE[info.level.value]
        out.append(
            Condition(
                f"{AIR_QUALITY_RULE}:{row.station_id}", AIR_QUALITY_RULE, "event",
                Subject(row.station_id), row.time, float(aqi), severity, aqi <= _NORMAL_AT_MOST,
                None if severity is None else float(info.low),
                NO_TEXTS if severity is None else _texts(row, info, aqi, station),
                f"{AIR_QUALITY_RULE}:{district}",
                details,
                figure=Figure("VN_AQI giờ", "Hourly VN_AQI", "",
                              Place.of(station, row.station_id).in_district, 10.0, 0),
            )
        )  # fmt: skip
    return out
