"""Reference values drawn on the dashboards, with their sources (shared/reference/domain.md).

- VN_AQI levels and colours: Decision 1459/QĐ-TCMT (2019), §1.2 [V].
- QCVN 05:2023/BTNMT ambient limits: PM2.5 24 h 45 µg/m³ from 1 Jan 2026 (50 before; that one
  cell is [P]), PM10 24 h 100, NO2 1 h 200 µg/m³, §1.11 [V].
- Street flood depth levels 10/20/30/50 cm: project convention [U] (no official thresholds
  exist, §6.6); the 2-hour rain figures 50/100 mm are Hanoi Drainage Co. rules of thumb [V].
- Dissolved oxygen 2 mg/L danger line for fish (hypoxia), 4 mg/L caution: project convention
  [U], after the 2016 and 2022 West Lake fish kills (§4.3).
- Traffic speed colours: project convention [U] (§7.3-7.4).
- Alert severities: ``processing.alerts.Severity`` (CAP 1.2 aligned); colours are ours.
"""

from __future__ import annotations

from typing import Final

from dashkit import BLUE, GREEN, ORANGE, PURPLE, RED, YELLOW, Step

AQI_STEPS: Final[list[Step]] = [
    (None, "#00E400"),  # 0-50 Tốt / Good
    (51, "#FFFF00"),  # 51-100 Trung bình / Moderate
    (101, "#FF7E00"),  # 101-150 Kém / Poor
    (151, "#FF0000"),  # 151-200 Xấu / Bad
    (201, "#8F3F97"),  # 201-300 Rất xấu / Very bad
    (301, "#7E0023"),  # 301-500 Nguy hại / Hazardous
]
QCVN_PM25_24H: Final = 45.0
QCVN_PM10_24H: Final = 100.0
QCVN_NO2_1H: Final = 200.0
FLOOD_STEPS: Final[list[Step]] = [
    (None, GREEN),
    (10, YELLOW),  # theo dõi / watch (kerb height)
    (20, ORANGE),  # cảnh báo / warning (motorbikes stall)
    (30, RED),  # nghiêm trọng / severe (exhaust height)
    (50, PURPLE),  # cực kỳ / extreme (danger on foot)
]
RAIN_2H_STEPS: Final[list[Step]] = [(None, GREEN), (50, ORANGE), (100, RED)]
DO_STEPS: Final[list[Step]] = [(None, RED), (2, ORANGE), (4, GREEN)]
DO_DANGER_MG_L: Final = 2.0
SPEED_STEPS: Final[list[Step]] = [(None, RED), (10, ORANGE), (20, YELLOW), (30, GREEN)]

SEVERITY_TEXT: Final = {
    "info": ("Thông tin / Info", BLUE),
    "minor": ("Nhẹ / Minor", YELLOW),
    "moderate": ("Trung bình / Moderate", ORANGE),
    "severe": ("Nghiêm trọng / Severe", RED),
    "extreme": ("Cực kỳ nghiêm trọng / Extreme", PURPLE),
}
SEVERITIES: Final = tuple(SEVERITY_TEXT)


def limit_line(value: float) -> list[Step]:
    """Green below a limit, red from it (drawn as a line at the limit)."""
    return [(None, GREEN), (value, RED)]
