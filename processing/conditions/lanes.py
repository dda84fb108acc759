"""Detector lanes of the live service and how their verdicts become alert conditions.

Each lane of the :class:`~processing.bank.DetectorBank` is paired with an
:class:`AlertProfile`: the alert's rule name, category, severity and bilingual wording. A
flagged reading becomes an abnormal :class:`~processing.conditions.base.Condition` for the key
``<lane>:<sensor>``; an unflagged reading of a sensor whose alert is open counts towards its
clear. Lanes without a profile (e.g. ``spatial`` drift on PM) still score and are counted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from contract import QUANTITIES, Quantity, Reading, Station, hanoi_time
from processing.alerts import Category, Severity
from processing.alerts.wording import Place, quantity_en, quantity_vi, score_en, score_vi
from processing.bank import BankResult, LaneSpec
from processing.conditions.base import Condition, Phase, RuleSpec, Step
from processing.detectors import ParamValue

__all__ = [
    "DEFAULT_LANES",
    "POLLUTION_UNUSUAL",
    "PROFILES",
    "SILENCE_LANE",
    "SPIKE_LANE",
    "AlertProfile",
    "LaneSource",
    "conditions_from",
    "spike_positions",
]

_AIR: Final = frozenset({Quantity.PM25, Quantity.PM10, Quantity.NO2, Quantity.CO, Quantity.O3})
_WATER: Final = frozenset(
    {Quantity.DISSOLVED_OXYGEN, Quantity.PH, Quantity.TURBIDITY, Quantity.CONDUCTIVITY,
     Quantity.CHLOROPHYLL_A, Quantity.AMMONIUM}
)  # fmt: skip

SPIKE_LANE: Final = "spike"
"""The lane whose flags mark readings as possible glitches (other verdicts on them wait)."""
SILENCE_LANE: Final = "silence"
"""The dropout lane behind silent-sensor alerts (:mod:`processing.conditions.silence`)."""

POLLUTION_UNUSUAL: Final[Mapping[str, ParamValue]] = MappingProxyType(
    {"direction": "up", "period_s": 86_400.0, "history": 0, "max_bins": 24, "events": False}
)
"""The calibrated detector on hourly PM2.5 means: rises only, a daily profile of 24 hours (no
period search), every rare hour reported (the alert lifecycle keeps one alert per event)."""

DEFAULT_LANES: Final[tuple[LaneSpec, ...]] = (
    LaneSpec("water_rising", "rate_of_rise", {"min_rate_scale_per_h": 5.0},
             frozenset({Quantity.WATER_DEPTH})),
    LaneSpec("oxygen_risk", "oxygen_risk"),
    # Pollution builds up over hours: these lanes judge hourly means (one value per hour of
    # day per day, so "usual for this hour" means usual across days, not across minutes of
    # autocorrelated noise), and only rises count. "Unusual" is a calibrated rarity: one hour
    # in about 3000 as high for this sensor, whatever its level, noise or daily cycle.
    LaneSpec("pollution_unusual", "calibrated", POLLUTION_UNUSUAL,
             frozenset({Quantity.PM25}), cadence="hourly"),
    LaneSpec("pollution_shift", "cusum", {"direction": "up"},
             frozenset({Quantity.PM25, Quantity.NO2}), cadence="hourly"),
    LaneSpec("stuck", "flatline", {"floor_visits": 2},
             _AIR | _WATER | frozenset({Quantity.SPEED})),
    # Not rain: a tipping bucket reports counts, steady rain repeats the same count, and its
    # real failure (a clog) reads 0, which no flatline test can tell from dry weather.
    LaneSpec("stuck_zero_ok", "flatline", {"exempt_value": 0.0},
             frozenset({Quantity.WATER_DEPTH})),
    LaneSpec(SPIKE_LANE, "spike", quantities=_AIR | _WATER | frozenset({Quantity.WATER_DEPTH})),
    LaneSpec("neighbours", "spatial", {"log": True},
             frozenset({Quantity.PM25, Quantity.PM10})),
    # Every quantity: a station that stops reporting is silent in each of its sensors.
    LaneSpec(SILENCE_LANE, "dropout", quantities=frozenset(Quantity)),
)  # fmt: skip
"""Lanes of the live service (tuning notes: processing/detectors/*.py docstrings)."""


@dataclass(frozen=True, slots=True)
class AlertProfile:
    """How a lane's detections are presented to operators."""

    category: Category
    severity: Severity
    title_vi: str
    title_en: str
    what_vi: str
    what_en: str
    confirm: int = 1
    """Consecutive flagged readings a new alert needs (a slow fault is not a blip)."""
    min_value: float | None = None
    """A flagged reading below this is not a matter for this alert (water "rising" to 0 cm
    after a sensor's offset is reset is no water on the street)."""
    public: bool = False
    """No lane is a public hazard: a detector's verdict (a rarity, a rate, a risk) is for the
    operators to weigh; the public is warned by the threshold rules, the official indices and
    the forecasts."""


PROFILES: Final[Mapping[str, AlertProfile]] = {
    "water_rising": AlertProfile(
        "event", Severity.MODERATE, "Nước dâng nhanh", "Water rising fast",
        "mực nước tại điểm ngập đang dâng nhanh bất thường",
        "water at this flood hotspot is rising unusually fast",
        min_value=3.0,  # cm: water standing on the street, not a sensor's noise around 0
    ),
    "oxygen_risk": AlertProfile(
        "event", Severity.SEVERE, "Nguy cơ thiếu oxy – cá chết", "Oxygen crash risk – fish kill",
        "oxy hoà tan có nguy cơ xuống dưới 2 mg/L trước bình minh; cân nhắc bật máy sục khí",
        "dissolved oxygen is at risk of falling below 2 mg/L before dawn; consider aeration",
    ),
    "pollution_unusual": AlertProfile(
        "event", Severity.MINOR, "Ô nhiễm bất thường", "Unusual pollution",
        "nồng độ cao bất thường so với cùng giờ các ngày trước",
        "the level is unusually high for this hour of the day",
    ),
    "pollution_shift": AlertProfile(
        "event", Severity.MINOR, "Ô nhiễm tăng kéo dài", "Sustained pollution rise",
        "nồng độ tăng kéo dài so với mức thường lệ", "a sustained rise above the usual level",
    ),
    "stuck": AlertProfile(
        "sensor_health", Severity.MINOR, "Cảm biến bị kẹt", "Sensor stuck",
        "giá trị không đổi lâu bất thường – kiểm tra thiết bị",
        "the value has not changed for unusually long – check the device",
    ),
    "stuck_zero_ok": AlertProfile(
        "sensor_health", Severity.MINOR, "Cảm biến bị kẹt", "Sensor stuck",
        "giá trị khác 0 không đổi lâu bất thường – kiểm tra thiết bị",
        "a non-zero value has not changed for unusually long – check the device",
    ),
    "spike": AlertProfile(
        "sensor_health", Severity.INFO, "Giá trị đột biến", "Spike",
        "một giá trị đột biến tách biệt – có thể do lỗi cảm biến",
        "an isolated spike – possibly a sensor glitch",
    ),
    "neighbours": AlertProfile(
        "sensor_health", Severity.MINOR, "Lệch so với trạm lân cận", "Disagrees with neighbours",
        "số đo lệch xa so với các trạm xung quanh – có thể trôi hiệu chuẩn",
        "readings differ strongly from nearby stations – possible calibration drift",
        confirm=10,  # drift is slow: ten minutes of disagreement, not a passing plume
    ),
}  # fmt: skip


def _texts(
    profile: AlertProfile,
    reading: Reading,
    station: Station | None,
    score: tuple[float, float | None],
) -> tuple[str, str, str, str]:
    spec = QUANTITIES[reading.quantity]
    place = Place.of(station, reading.station_id)
    local = hanoi_time(reading.measured_at)
    value_vi = quantity_vi(reading.value, spec.unit, 2)
    value_en = quantity_en(reading.value, spec.unit, 2)
    return (
        f"{profile.title_vi}: {place.name} ({spec.label_vi})",
        f"{profile.title_en}: {place.name} ({spec.label_en})",
        f"{spec.label_vi} tại {place.in_district} là {value_vi} lúc {local} (giờ Hà Nội): "
        f"{profile.what_vi}; {score_vi(*score)}.",
        f"{spec.label_en} at {place.in_district} is {value_en} at {local} (Hanoi time): "
        f"{profile.what_en}; {score_en(*score)}.",
    )


def conditions_from(
    result: BankResult,
    stations: Mapping[str, Station],
    open_keys: Collection[str],
    held: Collection[int] = (),
) -> list[Condition]:
    """Abnormal conditions for flagged readings, normal ones for sensors with open alerts.

    Args:
        result: the bank's verdicts on a batch.
        stations: the registry's stations.
        open_keys: dedup keys whose normal conditions matter (open or held alerts); keys
            flagged earlier in the same batch count too.
        held: batch positions of readings the spike lane flagged: other lanes' verdicts on
            them wait for the sensor's next reading (see :mod:`processing.alerts.lifecycle`).
    """
    out: list[Condition] = []
    for lane in result.lanes:
        profile = PROFILES.get(lane.lane)
        if profile is None:
            continue
        watched = set(open_keys)
        prefix = f"{lane.lane}:"
        any_watched = any(k.startswith(prefix) for k in watched)
        for position, score, verdict in zip(lane.indices.tolist(), lane.scores.tolist(),
                                            lane.flags.tolist(), strict=True):  # fmt: skip
            if not verdict and not any_watched:
                continue  # the common case: nothing to say
            reading = result.readings[position]
            flag = verdict and (profile.min_value is None or reading.value >= profile.min_value)
            key = prefix + result.sensor_at(position)
            if not flag and key not in watched:
                continue
            watched.add(key)
            any_watched = True
            station = stations.get(reading.station_id)
            district = station.district if station else "?"
            out.append(
                Condition(
                    key, lane.lane, profile.category, Condition.subject_of(reading),
                    reading.measured_at, reading.value,
                    profile.severity if flag else None, not flag, None,
                    _texts(profile, reading, station, (float(score), lane.threshold))
                    if flag else ("", "", "", ""),
                    f"{lane.lane}:{district}",
                    {"detector": lane.detector, "score": round(float(score), 3),
                     "score_threshold": lane.threshold},
                    hold=bool(flag) and lane.lane != SPIKE_LANE and int(position) in held,
                    confirm=profile.confirm,
                )
            )  # fmt: skip
    return out


def spike_positions(result: BankResult) -> set[int]:
    """Batch positions of the readings the spike lane flagged (possible glitches)."""
    return {
        int(position)
        for lane in result.lanes
        if lane.lane == SPIKE_LANE
        for position, flag in zip(lane.indices, lane.flags, strict=True)
        if flag
    }


class LaneSource:
    """The detector lanes' verdicts as conditions, for one cadence.

    For the per-reading lanes, a spike is reported only once the next reading shows it
    isolated: a reading far from the recent median is a spike only if the sensor's next
    reading comes back (at least halfway to where it was); if it stays away, it was the
    start of a rise or a step — a street flooding, a plume arriving — and the event lanes
    and rules speak for it, not a sensor-health note.

    Args:
        cadence: ``reading`` (the slice's readings) or ``hourly`` (the hourly means that
            closed in the slice).
        profiles: how each lane's detections are presented.
    """

    phase: Final[Phase] = "slice"

    def __init__(
        self,
        cadence: Literal["reading", "hourly"] = "reading",
        profiles: Mapping[str, AlertProfile] = PROFILES,
    ) -> None:
        self.cadence = cadence
        self.rules: tuple[RuleSpec, ...] = tuple(
            RuleSpec(name, p.category, p.title_vi, p.title_en, public=p.public)
            for name, p in profiles.items()
        )
        # spike verdicts waiting for the sensor's next reading, and its last ordinary value
        self._spikes: dict[str, tuple[Condition, float]] = {}
        self._before: dict[str, float] = {}

    def conditions(self, step: Step) -> list[Condition]:
        """The lanes' conditions on the slice (or on its closed hours)."""
        if self.cadence == "hourly":
            if step.hourly is None:
                return []
            return conditions_from(step.hourly, step.stations, step.watched)
        if step.scored is None:
            return []
        lanes = conditions_from(step.scored, step.stations, step.watched, step.spikes)
        return self._isolated_spikes(step.scored, lanes)

    def _isolated_spikes(self, scored: BankResult, conditions: list[Condition]) -> list[Condition]:
        flagged = {
            (c.station_id, c.subject.quantity, c.at): c
            for c in conditions
            if c.rule == SPIKE_LANE and c.severity
        }
        out = [c for c in conditions if not (c.rule == SPIKE_LANE and c.severity)]
        for lane in scored.lanes:
            if lane.lane != SPIKE_LANE:
                continue
            for position, flag in zip(lane.indices.tolist(), lane.flags.tolist(), strict=True):
                reading = scored.readings[position]
                sensor = scored.sensor_at(position)
                pending = self._spikes.pop(sensor, None)
                if pending is not None and not flag:
                    held, before = pending
                    if abs(reading.value - before) <= 0.5 * abs(held.value - before):
                        out.append(held)
                verdict = flagged.get((reading.station_id, reading.quantity, reading.measured_at))
                if flag and verdict is not None:
                    before = self._before.get(sensor, reading.value)
                    self._spikes[sensor] = (verdict, before)
                elif not flag:
                    self._before[sensor] = reading.value
        return out
