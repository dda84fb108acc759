"""Quantities, units and domains: what the city network measures, and in which unit.

Every stored value is in its quantity's canonical unit (:data:`QUANTITIES`); other spellings
of a unit are accepted at the edge with a factor (``m`` for a flood depth in ``cm``). The
canonical units are machine spellings (UCUM-like ``ug/m3``, ``Cel``); people are shown
:func:`display_unit` (``µg/m³``, ``°C``, ``xe/phút (veh/min)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = ["QUANTITIES", "Domain", "Quantity", "QuantitySpec", "display_unit"]


class Domain(StrEnum):
    """Sensor domains; the second-to-last topic levels are ``<domain>/<station_id>``."""

    AIR = "air"
    WATER = "water"
    FLOOD = "flood"
    TRAFFIC = "traffic"


class Quantity(StrEnum):
    """Every measured quantity the city network knows, with a canonical unit each."""

    PM25 = "pm25"
    PM10 = "pm10"
    NO2 = "no2"
    SO2 = "so2"
    CO = "co"
    O3 = "o3"
    AIR_TEMPERATURE = "air_temperature"
    RELATIVE_HUMIDITY = "relative_humidity"
    WATER_TEMPERATURE = "water_temperature"
    DISSOLVED_OXYGEN = "dissolved_oxygen"
    PH = "ph"
    TURBIDITY = "turbidity"
    CONDUCTIVITY = "conductivity"
    CHLOROPHYLL_A = "chlorophyll_a"
    AMMONIUM = "ammonium"
    RAINFALL = "rainfall"
    WATER_DEPTH = "water_depth"
    FLOW_MOTORBIKE = "flow_motorbike"
    FLOW_CAR = "flow_car"
    FLOW_BUS = "flow_bus"
    FLOW_TRUCK = "flow_truck"
    SPEED = "speed"
    OCCUPANCY = "occupancy"


@dataclass(frozen=True, slots=True)
class QuantitySpec:
    """What the contract knows about a quantity.

    Args:
        unit: canonical unit; stored values are always in it.
        domain: the domain whose stations report it.
        physical_min: below this the value is impossible (quarantined).
        physical_max: above this the value is impossible (quarantined).
        label_vi: Vietnamese name for operators.
        label_en: English name.
        aliases: other unit spellings accepted, with the factor to the canonical unit.
    """

    unit: str
    domain: Domain
    physical_min: float
    physical_max: float
    label_vi: str
    label_en: str
    aliases: tuple[tuple[str, float], ...] = ()


_UGM3 = (("kg/m3", 1e9), ("µg/m3", 1.0), ("ug/m^3", 1.0), ("mg/m3", 1e3))
_FLOW = (("count", 1.0), ("1", 1.0), ("veh", 1.0))

QUANTITIES: Final[dict[Quantity, QuantitySpec]] = {
    Quantity.PM25: QuantitySpec("ug/m3", Domain.AIR, 0, 5000, "Bụi PM2.5", "PM2.5", _UGM3),
    Quantity.PM10: QuantitySpec("ug/m3", Domain.AIR, 0, 10000, "Bụi PM10", "PM10", _UGM3),
    Quantity.NO2: QuantitySpec("ug/m3", Domain.AIR, 0, 20000, "NO2", "NO2", _UGM3),
    Quantity.SO2: QuantitySpec("ug/m3", Domain.AIR, 0, 20000, "SO2", "SO2", _UGM3),
    Quantity.CO: QuantitySpec("ug/m3", Domain.AIR, 0, 500000, "CO", "CO", _UGM3),
    Quantity.O3: QuantitySpec("ug/m3", Domain.AIR, 0, 5000, "O3", "O3", _UGM3),
    Quantity.AIR_TEMPERATURE: QuantitySpec(
        "Cel", Domain.AIR, -40, 60, "Nhiệt độ không khí", "Air temperature", (("degC", 1.0),)
    ),
    Quantity.RELATIVE_HUMIDITY: QuantitySpec(
        "%RH", Domain.AIR, 0, 100, "Độ ẩm", "Relative humidity", (("%", 1.0), ("/", 100.0))
    ),
    Quantity.WATER_TEMPERATURE: QuantitySpec(
        "Cel", Domain.WATER, -5, 50, "Nhiệt độ nước", "Water temperature", (("degC", 1.0),)
    ),
    Quantity.DISSOLVED_OXYGEN: QuantitySpec(
        "mg/L",
        Domain.WATER,
        0,
        40,
        "Oxy hoà tan (DO)",
        "Dissolved oxygen",
        (("mg/l", 1.0), ("kg/m3", 1e3), ("g/l", 1e3)),
    ),
    Quantity.PH: QuantitySpec("pH", Domain.WATER, 0, 14, "pH", "pH"),
    Quantity.TURBIDITY: QuantitySpec("NTU", Domain.WATER, 0, 4000, "Độ đục", "Turbidity"),
    Quantity.CONDUCTIVITY: QuantitySpec(
        "uS/cm", Domain.WATER, 0, 100000, "Độ dẫn điện", "Conductivity", (("S/m", 1e4),)
    ),
    Quantity.CHLOROPHYLL_A: QuantitySpec(
        "ug/L",
        Domain.WATER,
        0,
        2000,
        "Chất diệp lục a",
        "Chlorophyll-a",
        (("ug/l", 1.0), ("kg/m3", 1e6)),
    ),
    Quantity.AMMONIUM: QuantitySpec(
        "mg/L",
        Domain.WATER,
        0,
        200,
        "Amoni (N-NH4)",
        "Ammonium (as N)",
        (("mg/l", 1.0), ("kg/m3", 1e3)),
    ),
    Quantity.RAINFALL: QuantitySpec(
        "mm", Domain.FLOOD, 0, 500, "Lượng mưa", "Rainfall", (("m", 1e3),)
    ),
    Quantity.WATER_DEPTH: QuantitySpec(
        "cm", Domain.FLOOD, -20, 1000, "Độ sâu ngập", "Flood depth", (("m", 100.0), ("mm", 0.1))
    ),
    Quantity.FLOW_MOTORBIKE: QuantitySpec(
        "veh", Domain.TRAFFIC, 0, 20000, "Lưu lượng xe máy", "Motorbike flow", _FLOW
    ),
    Quantity.FLOW_CAR: QuantitySpec(
        "veh", Domain.TRAFFIC, 0, 10000, "Lưu lượng ô tô", "Car flow", _FLOW
    ),
    Quantity.FLOW_BUS: QuantitySpec(
        "veh", Domain.TRAFFIC, 0, 2000, "Lưu lượng xe buýt", "Bus flow", _FLOW
    ),
    Quantity.FLOW_TRUCK: QuantitySpec(
        "veh", Domain.TRAFFIC, 0, 5000, "Lưu lượng xe tải", "Truck flow", _FLOW
    ),
    Quantity.SPEED: QuantitySpec(
        "km/h", Domain.TRAFFIC, 0, 250, "Tốc độ trung bình", "Mean speed", (("m/s", 3.6),)
    ),
    Quantity.OCCUPANCY: QuantitySpec(
        "%", Domain.TRAFFIC, 0, 100, "Độ chiếm dụng", "Occupancy", (("/", 100.0),)
    ),
}


_DISPLAY: Final[dict[str, str]] = {
    "ug/m3": "µg/m³",
    "Cel": "°C",
    "%RH": "%",
    "uS/cm": "µS/cm",
    "ug/L": "µg/L",
    "pH": "",  # a pH value has no unit; its label says pH
}
_VEHICLES: Final = "veh"
_MINUTE_S: Final = 60


def display_unit(unit: str, interval_s: float | None = None) -> str:
    """How a canonical unit is shown to people.

    A vehicle count is a count per the sensor's counting interval (``interval_s``), shown in
    Vietnamese with English alongside.

    >>> display_unit("ug/m3"), display_unit("Cel"), display_unit("cm"), display_unit("pH")
    ('µg/m³', '°C', 'cm', '')
    >>> display_unit("veh", 60), display_unit("veh", 300), display_unit("veh", 30)
    ('xe/phút (veh/min)', 'xe/5 phút (veh/5 min)', 'xe/30 s (veh/30 s)')
    >>> display_unit("veh")
    'xe (veh)'
    """
    if unit != _VEHICLES:
        return _DISPLAY.get(unit, unit)
    if interval_s is None or interval_s <= 0:
        return "xe (veh)"
    if interval_s == _MINUTE_S:
        return "xe/phút (veh/min)"
    if interval_s % _MINUTE_S == 0:
        minutes = int(interval_s // _MINUTE_S)
        return f"xe/{minutes} phút (veh/{minutes} min)"
    return f"xe/{interval_s:g} s (veh/{interval_s:g} s)"
