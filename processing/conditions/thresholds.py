"""Threshold rules: readings -> conditions (pure).

A rule looks at one reading and says how bad the situation is right now: a severity, or
``None`` when it is normal. Whether that becomes a new alert, an update, or a clear is the
lifecycle's decision (:mod:`processing.alerts.lifecycle`), with hysteresis and cooldown.

Default levels and their sources:

- Street flood depth (cm): watch ≥ 10, warning ≥ 20, severe ≥ 30, extreme ≥ 50. No official
  Vietnamese street-depth thresholds exist; these are the project's proposal
  (reference/domain.md §6.6, tagged [U]), mapped to CAP severities as in §8.1.
- Dissolved oxygen in West Lake (mg/L): < 4 (QCVN 08:2023 level C minimum as used by Hanoi's
  2022 report, [P]) moderate, < 2 severe (fish-kill danger), < 1 extreme.
- PM2.5 (µg/m³, a single sample): ≥ 150 moderate, ≥ 250 severe, ≥ 350 extreme — the VN_AQI
  "Xấu"/"Rất xấu"/"Nguy hại" breakpoints (Decision 1459, §1.4) applied to raw samples as an
  early warning; the official hourly index is computed separately.
- Chlorophyll-a in West Lake (µg/L): ≥ 80 minor (above the hot season's usual 20–60),
  ≥ 100 moderate (algal bloom), ≥ 150 severe — the domain reference's envelopes (§4.2,
  tagged [U]); a bloom is what drives the dawn oxygen sag and, when it collapses, fish kills.

Every rule but ``pm25_high`` is public (it may leave the operations centre, with its
instruction): a single PM2.5 sample is the operators' early warning, and the public's
air-quality warning is the official hourly VN_AQI (:mod:`processing.conditions.air_quality`).
An open alert's updates follow the reading (current value and trend beside the peak, see
:mod:`processing.alerts.lifecycle`); ``step`` is the change that is news.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from contract import QUANTITIES, Quantity, Reading, Station, hanoi_time
from processing.alerts import Category, Severity
from processing.alerts.wording import Figure, Place, quantity_en, quantity_vi
from processing.conditions.base import (
    Condition,
    Level,
    Phase,
    RuleSpec,
    Step,
    Subject,
)
from processing.conditions.dry_weather import DryWeatherCheck

__all__ = ["DEFAULT_RULES", "ThresholdRule", "ThresholdSource", "evaluate"]


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """A rule on one quantity.

    Args:
        name: rule id (part of the dedup key).
        quantity: the quantity it watches.
        direction: ``above`` (high is bad) or ``below`` (low is bad).
        levels: ordered from mildest to worst.
        hysteresis: how far back past the mildest threshold a value must go to count as normal.
        title_vi: Vietnamese title.
        title_en: English title.
        category: event or sensor_health.
        confirm: consecutive readings at a level a new alert needs (two: one reading of
            noise at a threshold, or a glitch, raises nothing); an open alert still
            follows each reading.
        public: a hazard the public is warned of (with ``instruction_vi``/``_en``).
        instruction_vi: what to do, in Vietnamese (public rules).
        instruction_en: the same in English.
        step: a change of the value that is news for an open alert's update.
    """

    name: str
    quantity: Quantity
    direction: Literal["above", "below"]
    levels: tuple[Level, ...]
    hysteresis: float
    title_vi: str
    title_en: str
    category: Category = "event"
    confirm: int = 2
    public: bool = True
    instruction_vi: str = ""
    instruction_en: str = ""
    step: float = 1.0

    @property
    def spec(self) -> RuleSpec:
        """The rule as the rest of the system knows it."""
        return RuleSpec(
            self.name, self.category, self.title_vi, self.title_en,
            public=self.public and self.category == "event",
            instruction_vi=self.instruction_vi, instruction_en=self.instruction_en,
        )  # fmt: skip

    def level_of(self, value: float) -> Level | None:
        """The worst level reached by ``value``, or None."""
        reached = None
        for level in self.levels:
            hit = value >= level.threshold if self.direction == "above" else value < level.threshold
            if hit:
                reached = level
        return reached

    def is_normal(self, value: float) -> bool:
        """True when ``value`` is back past the mildest threshold by the hysteresis."""
        mildest = self.levels[0].threshold
        if self.direction == "above":
            return value < mildest - self.hysteresis
        return value >= mildest + self.hysteresis


def _sev(x: str) -> Severity:
    return Severity(x)


DEFAULT_RULES: Final[tuple[ThresholdRule, ...]] = (
    ThresholdRule(
        "flood_depth", Quantity.WATER_DEPTH, "above",
        (
            Level(10.0, _sev("minor"), "Theo dõi", "Watch"),
            Level(20.0, _sev("moderate"), "Cảnh báo", "Warning"),
            Level(30.0, _sev("severe"), "Nguy hiểm", "Severe"),
            Level(50.0, _sev("extreme"), "Rất nguy hiểm", "Extreme"),
        ),
        hysteresis=3.0, title_vi="Ngập úng đô thị", title_en="Urban flooding",
        instruction_vi="Không đi vào khu vực ngập, không cố cho xe đi qua chỗ nước sâu; chọn "
        "đường khác, ngắt điện các thiết bị ở tầng trệt nếu nước vào nhà và theo dõi các bản "
        "tin cập nhật.",
        instruction_en="Keep out of the flooded area and do not drive through deep water; take "
        "another route, switch off ground-floor electrics if water comes in, and follow the "
        "updates.",
        step=2.0,
    ),
    ThresholdRule(
        "low_oxygen", Quantity.DISSOLVED_OXYGEN, "below",
        (
            Level(4.0, _sev("moderate"), "Thấp", "Low"),
            Level(2.0, _sev("severe"), "Nguy cơ cá chết", "Fish-kill danger"),
            Level(1.0, _sev("extreme"), "Thiếu oxy nghiêm trọng", "Severe hypoxia"),
        ),
        hysteresis=0.5, title_vi="Oxy hoà tan thấp", title_en="Low dissolved oxygen",
        instruction_vi="Không bắt, nhặt hay sử dụng cá chết ở hồ; đơn vị quản lý hồ cần sục "
        "khí và vớt cá chết; theo dõi các bản tin cập nhật.",
        instruction_en="Do not catch, collect or eat dead fish from the lake; the lake's "
        "operator should aerate the water and remove dead fish; follow the updates.",
        step=0.3,
    ),
    ThresholdRule(
        "pm25_high", Quantity.PM25, "above",
        (
            Level(150.0, _sev("moderate"), "Xấu", "Bad"),
            Level(250.0, _sev("severe"), "Rất xấu", "Very bad"),
            Level(350.0, _sev("extreme"), "Nguy hại", "Hazardous"),
        ),
        hysteresis=20.0, title_vi="Bụi PM2.5 cao", title_en="High PM2.5",
        public=False, step=20.0,
    ),
    ThresholdRule(
        "algal_bloom", Quantity.CHLOROPHYLL_A, "above",
        (
            Level(80.0, _sev("minor"), "Theo dõi", "Watch"),
            Level(100.0, _sev("moderate"), "Cảnh báo", "Warning"),
            Level(150.0, _sev("severe"), "Dày đặc", "Dense"),
        ),
        hysteresis=15.0, title_vi="Tảo nở hoa", title_en="Algal bloom",
        instruction_vi="Tránh tiếp xúc với nước hồ: không bơi, không câu cá, không để vật "
        "nuôi uống nước hồ; theo dõi các bản tin cập nhật.",
        instruction_en="Avoid contact with the lake water: no swimming or fishing, and keep "
        "pets from drinking it; follow the updates.",
        step=10.0,
    ),
)  # fmt: skip


class ThresholdSource:
    """Threshold rules on every reading, with the dry-weather check on flood depths.

    A flood-depth verdict on a reading the spike lane flagged is held (``hold``) until the
    sensor's next reading confirms it: one glitch never raises a flood.

    Args:
        rules: the threshold rules.
        dry: the dry-weather check (a new flood with no rain upstream is a sensor matter).
    """

    phase: Final[Phase] = "slice"

    def __init__(
        self, rules: Sequence[ThresholdRule] = DEFAULT_RULES, dry: DryWeatherCheck | None = None
    ) -> None:
        self.dry = dry or DryWeatherCheck()
        self._by_quantity: dict[Quantity, list[ThresholdRule]] = defaultdict(list)
        for rule in rules:
            self._by_quantity[rule.quantity].append(rule)
        self.rules: tuple[RuleSpec, ...] = (*(r.spec for r in rules), *self.dry.rules)

    def conditions(self, step: Step) -> list[Condition]:
        """The rules' verdicts on the slice's readings."""
        self.dry.observe(step.readings)
        found = self.dry.apply(
            evaluate(step.readings, self._by_quantity, step.stations),
            step.stations, step.open_keys, step.watched,
        )  # fmt: skip
        if not step.spikes or step.scored is None:
            return found
        readings = step.scored.readings
        suspect = {(readings[i].station_id, readings[i].quantity, readings[i].measured_at)
                   for i in step.spikes}  # fmt: skip
        return [
            dataclasses.replace(c, hold=True)
            if c.severity is not None and (c.station_id, c.subject.quantity, c.at) in suspect
            else c
            for c in found
        ]


def evaluate(
    readings: Sequence[Reading],
    rules: Mapping[Quantity, list[ThresholdRule]],
    stations: Mapping[str, Station] | None = None,
) -> list[Condition]:
    """Conditions for every reading that some rule watches, in reading order."""
    out: list[Condition] = []
    for reading in readings:
        for rule in rules.get(reading.quantity, ()):
            level = rule.level_of(reading.value)
            station = stations.get(reading.station_id) if stations else None
            out.append(
                Condition(
                    f"{rule.name}:{reading.station_id}",
                    rule.name,
                    rule.category,
                    Subject(reading.station_id, reading.quantity),
                    reading.measured_at,
                    reading.value,
                    None if level is None else level.severity,
                    rule.is_normal(reading.value),
                    None if level is None else level.threshold,
                    ("", "", "", "") if level is None else describe(rule, level, reading, station),
                    f"{rule.name}:{station.district if station else '?'}",
                    {}
                    if level is None
                    else {
                        "level_vi": level.name_vi,
                        "level_en": level.name_en,
                        **rule.spec.instructions(),
                    },
                    confirm=rule.confirm,
                    figure=figure_of(rule, reading, station),
                )
            )
    return out


_FIGURES: dict[tuple[str, str, str | None, str | None], Figure] = {}
_FIGURES_MAX: Final = 4096


def figure_of(rule: ThresholdRule, reading: Reading, station: Station | None) -> Figure:
    """What the rule's value is, for the updates of its open alert.

    Normal readings carry it too: an alert restored after a restart is followed from
    whatever reading comes next. One figure per rule and station, kept in a bounded cache
    (emptied when full): the hot path asks for one per reading.
    """
    name, district = (station.name, station.district) if station else (None, None)
    key = (rule.name, reading.station_id, name, district)
    figure = _FIGURES.get(key)
    if figure is None:
        if len(_FIGURES) >= _FIGURES_MAX:
            _FIGURES.clear()
        spec = QUANTITIES[reading.quantity]
        figure = _FIGURES[key] = Figure(
            spec.label_vi, spec.label_en, spec.unit,
            Place.of(station, reading.station_id).in_district, rule.step,
            higher_is_worse=rule.direction == "above",
        )  # fmt: skip
    return figure


@functools.lru_cache(maxsize=256)
def _limits(threshold: float, unit: str) -> tuple[str, str]:
    """A threshold with its unit, in Vietnamese and English (``50 cm``, ``0,5 mg/L``)."""
    decimals = 0 if float(threshold).is_integer() else 1
    return quantity_vi(threshold, unit, decimals), quantity_en(threshold, unit, decimals)


def describe(
    rule: ThresholdRule, level: Level, reading: Reading, station: Station | None
) -> tuple[str, str, str, str]:
    """Bilingual title and message for an alert (local time Asia/Ho_Chi_Minh)."""
    spec = QUANTITIES[reading.quantity]
    place = Place.of(station, reading.station_id)
    where = place.in_district
    local = hanoi_time(reading.measured_at)
    limit_vi, limit_en = _limits(level.threshold, spec.unit)
    relation_vi = "vượt" if rule.direction == "above" else "dưới"
    relation_en = "above" if rule.direction == "above" else "below"
    title_vi = f"{rule.title_vi} – {level.name_vi}: {place.name}"
    title_en = f"{rule.title_en} – {level.name_en}: {place.name}"
    if reading.value == level.threshold:
        relation_vi, relation_en = "bằng", "at"
    message_vi = (
        f"{spec.label_vi} tại {where} là {quantity_vi(reading.value, spec.unit)} "
        f"lúc {local} (giờ Hà Nội), {relation_vi} ngưỡng {level.name_vi.lower()} {limit_vi}."
    )
    message_en = (
        f"{spec.label_en} at {where} is {quantity_en(reading.value, spec.unit)} "
        f"at {local} (Hanoi time), {relation_en} the {level.name_en.lower()} threshold of "
        f"{limit_en}."
    )
    return title_vi, title_en, message_vi, message_en
