"""How alert texts name places, times, numbers and trends: the parts every rule shares (pure).

Each rule family writes its own sentences (they say different things), but a place is always
named the same way — the station's registered name, else its id, with its district — a time
is always Hanoi time to the minute, saying so in both languages, and a number is written as
each language writes it (``9,8`` in Vietnamese, ``9.8`` in English). A detector's anomaly
score is a pure number: it is never written with the quantity's unit.

>>> from datetime import UTC, datetime
>>> place = Place.of(None, "fd-x")
>>> place.name, place.in_district
('fd-x', 'fd-x')
>>> local_vi(datetime(2025, 9, 30, 2, 10, tzinfo=UTC))
'09:10 30/09/2025 (giờ Hà Nội)'
>>> number_vi(1234.56, 1), number_en(1234.56, 1)
('1.234,6', '1,234.6')
>>> score_vi(0.934, 0.5), score_en(0.934, 0.5)
('điểm bất thường 0,93 (ngưỡng 0,50)', 'anomaly score 0.93 (threshold 0.50)')
>>> Place("Trạm đo mưa Láng").titled("Trạm đo mưa")
'Trạm đo mưa Láng'
>>> Place("rg-lang").titled("Trạm đo mưa")
'Trạm đo mưa rg-lang'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from contract import Station, hanoi_time

__all__ = [
    "Figure",
    "Place",
    "Trend",
    "local_en",
    "local_vi",
    "number_en",
    "number_vi",
    "progress_texts",
    "quantity_en",
    "quantity_vi",
    "score_en",
    "score_vi",
    "unit_text",
]


@dataclass(frozen=True, slots=True)
class Place:
    """A station as alert texts name it.

    Args:
        name: the registered name (the id when the station is not registered).
        district: its district, if known.
    """

    name: str
    district: str | None = None

    @classmethod
    def of(cls, station: Station | None, station_id: str) -> Place:
        """The place of ``station_id`` (``station``: its registry entry, if any)."""
        if station is None:
            return cls(station_id)
        return cls(station.name, station.district)

    @property
    def in_district(self) -> str:
        """``name, district`` (the name alone when the district is unknown or in the name).

        >>> Place("Hoàn Kiếm", "Hoàn Kiếm").in_district
        'Hoàn Kiếm'
        """
        if not self.district or self.district.casefold() in self.name.casefold():
            return self.name
        return f"{self.name}, {self.district}"

    def titled(self, kind: str) -> str:
        """The name preceded by its kind (``Trạm đo mưa``), unless the name already says it."""
        if self.name.casefold().startswith(kind.casefold()):
            return self.name
        return f"{kind} {self.name}"


def local_vi(moment: datetime) -> str:
    """An event time for a Vietnamese text: Hanoi time, saying so."""
    return f"{hanoi_time(moment)} (giờ Hà Nội)"


def local_en(moment: datetime) -> str:
    """An event time for an English text: Hanoi time, saying so."""
    return f"{hanoi_time(moment)} (Hanoi time)"


_VI_DIGITS = str.maketrans(",.", ".,")


def number_en(value: float, decimals: int = 1) -> str:
    """A number as English writes it: ``1,234.5``."""
    if -1000 < value < 1000:  # the common case, without a thousands separator
        return f"{value:.{decimals}f}"
    return f"{value:,.{decimals}f}"


def number_vi(value: float, decimals: int = 1) -> str:
    """A number as Vietnamese writes it: ``1.234,5`` (decimal comma, dot for thousands)."""
    if -1000 < value < 1000:
        return f"{value:.{decimals}f}".replace(".", ",")
    return f"{value:,.{decimals}f}".translate(_VI_DIGITS)


_UNIT_TEXT = {"ug/m3": "µg/m³", "ug/L": "µg/L", "uS/cm": "µS/cm", "Cel": "°C", "%RH": "%"}


def unit_text(unit: str) -> str:
    """A canonical unit as people read it (``ug/m3`` → ``µg/m³``, ``Cel`` → ``°C``).

    >>> unit_text("ug/m3"), unit_text("cm")
    ('µg/m³', 'cm')
    """
    return _UNIT_TEXT.get(unit, unit)


def quantity_vi(value: float, unit: str, decimals: int = 1) -> str:
    """A value with its unit, in Vietnamese (``9,8 cm``; an index has no unit)."""
    return f"{number_vi(value, decimals)} {unit_text(unit)}".rstrip()


def quantity_en(value: float, unit: str, decimals: int = 1) -> str:
    """A value with its unit, in English (``9.8 cm``)."""
    return f"{number_en(value, decimals)} {unit_text(unit)}".rstrip()


def score_vi(score: float, threshold: float | None) -> str:
    """A detector's anomaly score for a Vietnamese text: a pure number, never with a unit."""
    limit = "" if threshold is None else f" (ngưỡng {number_vi(threshold, 2)})"
    return f"điểm bất thường {number_vi(score, 2)}{limit}"


def score_en(score: float, threshold: float | None) -> str:
    """A detector's anomaly score for an English text: a pure number, never with a unit."""
    limit = "" if threshold is None else f" (threshold {number_en(threshold, 2)})"
    return f"anomaly score {number_en(score, 2)}{limit}"


class Trend(StrEnum):
    """Which way a value is going (over the lifecycle's trend window)."""

    RISING = "rising"
    FALLING = "falling"
    STEADY = "steady"

    @property
    def label_vi(self) -> str:
        """``đang tăng`` / ``đang giảm`` / ``ổn định``."""
        return _TREND_VI[self]

    @classmethod
    def of(cls, change: float, steady_within: float) -> Trend:
        """The trend of a change over the window (within ``steady_within``: steady)."""
        if change > steady_within:
            return cls.RISING
        if change < -steady_within:
            return cls.FALLING
        return cls.STEADY


_TREND_VI = {Trend.RISING: "đang tăng", Trend.FALLING: "đang giảm", Trend.STEADY: "ổn định"}


@dataclass(frozen=True, slots=True)
class Figure:
    """What a rule's value is, for the updates of an open alert (current value and trend).

    A condition that carries a figure lets the lifecycle follow its open alert: the alert's
    update says the current value and which way it goes beside the peak.

    Args:
        label_vi: what the value is, in Vietnamese (``Độ sâu ngập``).
        label_en: in English (``Flood depth``).
        unit: the value's unit (empty for an index).
        where: the place (``Điểm ngập Thái Hà, Đống Đa``).
        step: a change this large is news (a new update); half of it over the trend window
            is a trend (less is steady).
        decimals: decimals shown.
        higher_is_worse: False when a low value is the hazard (dissolved oxygen).
    """

    label_vi: str
    label_en: str
    unit: str
    where: str
    step: float
    decimals: int = 1
    higher_is_worse: bool = True


def progress_texts(
    figure: Figure,
    current: tuple[float, datetime, Trend],
    peak: tuple[float, datetime] | None,
) -> tuple[str, str]:
    """The message of an open alert's update: the current value and trend beside the peak.

    Args:
        figure: what the value is.
        current: the current value, its event time and its trend.
        peak: the worst value and its event time (None when unknown: after a restart).

    Returns:
        message_vi, message_en.
    """
    value, at, trend = current
    now_vi = f"{quantity_vi(value, figure.unit, figure.decimals)} ({trend.label_vi})"
    now_en = f"{quantity_en(value, figure.unit, figure.decimals)} ({trend.value})"
    vi = f"{figure.label_vi} tại {figure.where} hiện tại {now_vi} lúc {hanoi_time(at)}"
    en = f"{figure.label_en} at {figure.where} is now {now_en} at {hanoi_time(at)}"
    if peak is not None:
        worst_vi = "đỉnh" if figure.higher_is_worse else "thấp nhất"
        worst_en = "peak" if figure.higher_is_worse else "lowest"
        vi += f", {worst_vi} {quantity_vi(peak[0], figure.unit, figure.decimals)} lúc "
        vi += hanoi_time(peak[1])
        en += f", {worst_en} {quantity_en(peak[0], figure.unit, figure.decimals)} at "
        en += hanoi_time(peak[1])
    return f"{vi} (giờ Hà Nội).", f"{en} (Hanoi time)."
