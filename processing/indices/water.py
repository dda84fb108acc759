"""Water quality from buoy parameters: DO saturation and an indicative, *partial* WQI.

The official VN_WQI (Decision 1460/QĐ-TCMT, 2019) needs at least three of five parameter
groups with group IV holding three or more parameters. Our West Lake buoys measure pH
(group I), dissolved oxygen and ammonium (group IV) only, so what is computed here is
**not** the official index: it is always labelled :data:`LABEL_EN` / :data:`LABEL_VI` and
carries ``is_official = False``. The sub-index tables follow one open-source implementation
of 1460 and are tagged [P] in the project's domain reference (check them against the
official PDF before any official use).

>>> round(do_saturation_mg_l(25.0), 2)
8.18
>>> w = partial_wqi(ph=7.6, do_mg_l=7.0, temp_c=25.0, ammonium_mg_l=0.2)
>>> (w.value, w.category.value, w.label_en, w.is_official)
(98, 'very_good', 'WQI (partial, indicative)', False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "LABEL_EN",
    "LABEL_VI",
    "PartialWqi",
    "WqiCategory",
    "WqiCategoryInfo",
    "ammonium_subindex",
    "do_percent",
    "do_saturation_mg_l",
    "do_saturation_mg_l_many",
    "do_subindex",
    "partial_wqi",
    "ph_subindex",
    "wqi_category",
]

FloatArray = npt.NDArray[np.float64]

LABEL_EN: Final = "WQI (partial, indicative)"
LABEL_VI: Final = "WQI (một phần, tham khảo)"
NOTE_EN: Final = (
    "Indicative only: computed from buoy parameters (pH, DO, ammonium), not the official "
    "VN_WQI of Decision 1460/QĐ-TCMT, which needs at least 3 of 5 parameter groups."
)
NOTE_VI: Final = (
    "Chỉ mang tính tham khảo: tính từ các thông số của phao quan trắc (pH, DO, amoni), "
    "không phải chỉ số VN_WQI chính thức theo Quyết định 1460/QĐ-TCMT."
)

# Sub-index tables, domain reference §3.3-3.4 [P]: (concentration, q) points.
_DO_PCT_POINTS: Final = ((20.0, 25.0), (50.0, 50.0), (75.0, 75.0), (88.0, 100.0))
_DO_PCT_POINTS_HIGH: Final = ((112.0, 100.0), (125.0, 75.0), (150.0, 50.0), (200.0, 25.0))
_NH4_POINTS: Final = ((0.3, 75.0), (0.6, 50.0), (0.9, 25.0), (5.0, 10.0))


def do_saturation_mg_l(temp_c: float) -> float:
    """Oxygen solubility in fresh water at 1 atm (mg/L) for a water temperature in °C.

    ``14.652 - 0.41022 T + 0.0079910 T² - 0.000077774 T³`` (domain reference §3.3).
    """
    t = float(temp_c)
    return 14.652 - 0.41022 * t + 0.0079910 * t**2 - 0.000077774 * t**3


def do_saturation_mg_l_many(temp_c: FloatArray) -> FloatArray:
    """Vectorised :func:`do_saturation_mg_l`."""
    t = np.asarray(temp_c, dtype=np.float64)
    result: FloatArray = 14.652 - 0.41022 * t + 0.0079910 * t**2 - 0.000077774 * t**3
    return result


def do_percent(do_mg_l: float, temp_c: float) -> float:
    """Dissolved oxygen as percent of saturation at ``temp_c``."""
    return 100.0 * do_mg_l / do_saturation_mg_l(temp_c)


def _interp(x: float, points: tuple[tuple[float, float], ...]) -> float:
    xs, qs = zip(*points, strict=True)
    return float(np.interp(x, xs, qs))


def ph_subindex(ph: float) -> float:
    """Sub-index of pH: 100 in 6-8.5, linear to 50 at 5.5 and 9, 10 outside [5.5, 9] [P]."""
    if ph < 5.5 or ph > 9.0:
        return 10.0
    if ph < 6.0:
        return 50.0 + (ph - 5.5) / 0.5 * 50.0
    if ph <= 8.5:
        return 100.0
    return 100.0 - (ph - 8.5) / 0.5 * 50.0


def do_subindex(do_pct: float) -> float:
    """DO sub-index from percent saturation; supersaturation is penalised too [P]."""
    if do_pct < 20.0 or do_pct > 200.0:
        return 10.0
    if do_pct <= 88.0:
        return _interp(do_pct, _DO_PCT_POINTS)
    if do_pct <= 112.0:
        return 100.0
    return _interp(do_pct, _DO_PCT_POINTS_HIGH)


def ammonium_subindex(nh4_mg_l: float) -> float:
    """Ammonium (N-NH4, mg/L) sub-index: 100 below 0.3, down to 10 at 5 and above [P]."""
    if nh4_mg_l < 0.3:
        return 100.0
    if nh4_mg_l >= 5.0:
        return 10.0
    return _interp(nh4_mg_l, _NH4_POINTS)


class WqiCategory(StrEnum):
    """The six WQI classes of Decision 1460 (§3.5)."""

    VERY_GOOD = "very_good"
    GOOD = "good"
    MEDIUM = "medium"
    POOR = "poor"
    BAD = "bad"
    VERY_POLLUTED = "very_polluted"


@dataclass(frozen=True, slots=True)
class WqiCategoryInfo:
    """Display data of one WQI class (use, like the index itself, as indicative)."""

    category: WqiCategory
    low: int
    high: int
    name_vi: str
    name_en: str
    rgb: tuple[int, int, int]


_CATEGORIES: Final = (
    WqiCategoryInfo(WqiCategory.VERY_GOOD, 91, 100, "Rất tốt", "Very good", (51, 51, 255)),
    WqiCategoryInfo(WqiCategory.GOOD, 76, 90, "Tốt", "Good", (0, 228, 0)),
    WqiCategoryInfo(WqiCategory.MEDIUM, 51, 75, "Trung bình", "Medium", (255, 255, 0)),
    WqiCategoryInfo(WqiCategory.POOR, 26, 50, "Xấu", "Poor", (255, 126, 0)),
    WqiCategoryInfo(WqiCategory.BAD, 10, 25, "Kém", "Bad", (255, 0, 0)),
    WqiCategoryInfo(
        WqiCategory.VERY_POLLUTED, 0, 9, "Ô nhiễm rất nặng", "Very heavily polluted", (126, 0, 35)
    ),
)


def wqi_category(value: int) -> WqiCategoryInfo:
    """The class of an integer WQI (values above 100 count as 100)."""
    for info in _CATEGORIES:
        if value >= info.low:
            return info
    return _CATEGORIES[-1]


@dataclass(frozen=True, slots=True)
class PartialWqi:
    """An indicative WQI from the parameters a buoy measures (never the official VN_WQI).

    Args:
        value: the index rounded half-up to an integer.
        exact: the index before rounding.
        category: its class (indicative).
        sub_indices: the sub-index of every parameter used.
        missing: parameters that were not available.
    """

    value: int
    exact: float
    category: WqiCategory
    sub_indices: Mapping[str, float]
    missing: tuple[str, ...]
    label_en: str = LABEL_EN
    label_vi: str = LABEL_VI
    note_en: str = NOTE_EN
    note_vi: str = NOTE_VI
    is_official: bool = False
    groups_used: tuple[str, ...] = field(default=("I", "IV"))


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def partial_wqi(
    *,
    ph: float | None = None,
    do_mg_l: float | None = None,
    temp_c: float | None = None,
    ammonium_mg_l: float | None = None,
) -> PartialWqi | None:
    """Compute the indicative partial WQI, or None when no group IV parameter is usable.

    ``WQI = (WQI_I / 100) * WQI_IV`` with group I = pH (100, neutral, when missing, as the
    reference code does) and group IV = the mean of the DO (needs temperature) and ammonium
    sub-indices.
    """
    subs: dict[str, float] = {}
    if ph is not None and math.isfinite(ph):
        subs["ph"] = ph_subindex(ph)
    if _finite(do_mg_l) and _finite(temp_c) and do_mg_l is not None and temp_c is not None:
        subs["do_pct"] = do_subindex(do_percent(do_mg_l, temp_c))
    if ammonium_mg_l is not None and math.isfinite(ammonium_mg_l):
        subs["ammonium"] = ammonium_subindex(ammonium_mg_l)
    missing = [key for key in ("ph", "do_pct", "ammonium") if key not in subs]
    group_iv = [subs[k] for k in ("do_pct", "ammonium") if k in subs]
    if not group_iv:
        return None
    exact = subs.get("ph", 100.0) / 100.0 * (sum(group_iv) / len(group_iv))
    value = math.floor(round(exact, 9) + 0.5)
    return PartialWqi(value, exact, wqi_category(value).category, subs, tuple(missing))
