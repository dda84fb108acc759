"""The simulated Hanoi fleet: 76 stations at real places, as registry descriptors.

- 12 air-quality stations (``aq-*``), every 60 s: PM2.5, PM10, NO2, SO2, CO, O3, air
  temperature, humidity;
- 4 West Lake buoys (``wl-buoy-*``), every 300 s: water temperature, DO, pH, turbidity,
  conductivity, chlorophyll-a, ammonium;
- 10 rain gauges (``rg-*``), every 60 s: rainfall in mm per interval (0.2 mm tipping bucket);
- 20 street flood-depth sensors (``fd-*``) at known hotspots, every 60 s: water depth (cm);
- 30 traffic detectors (``tr-<corridor>-<n>``, n = 1 at the upstream end), every 60 s:
  vehicles per interval by class (motorbike, car, bus, truck), speed, occupancy.

Place names are real (see shared/reference/domain.md §4–7). Coordinates carry a tag in
``attributes["coords"]``: ``P`` = from one third-party source, ``U`` = our estimate for map
placement only. Hydraulic and traffic parameters in ``attributes`` are simulation
settings, not measured facts [U].
"""

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from contract import Domain, Quantity, Sensor, Station, StationId

__all__ = [
    "AIR_QUANTITIES",
    "BUOY_QUANTITIES",
    "TRAFFIC_QUANTITIES",
    "Corridor",
    "corridors",
    "hanoi_fleet",
    "select_stations",
]

Q = Quantity
AIR_QUANTITIES = (Q.PM25, Q.PM10, Q.NO2, Q.SO2, Q.CO, Q.O3, Q.AIR_TEMPERATURE, Q.RELATIVE_HUMIDITY)
BUOY_QUANTITIES = (
    Q.WATER_TEMPERATURE,
    Q.DISSOLVED_OXYGEN,
    Q.PH,
    Q.TURBIDITY,
    Q.CONDUCTIVITY,
    Q.CHLOROPHYLL_A,
    Q.AMMONIUM,
)
TRAFFIC_QUANTITIES = (Q.FLOW_MOTORBIKE, Q.FLOW_CAR, Q.FLOW_BUS, Q.FLOW_TRUCK, Q.SPEED, Q.OCCUPANCY)

# Plausible ranges per reporting interval (valid_min, valid_max); outside them processing
# flags a reading as suspicious (the wire's physical range decides what is impossible).
# fmt: off
_VALID: dict[Quantity, tuple[float, float]] = {
    Q.PM25: (0, 1000), Q.PM10: (0, 1500), Q.NO2: (0, 1000), Q.SO2: (0, 1000), Q.CO: (0, 60000),
    Q.O3: (0, 800), Q.AIR_TEMPERATURE: (0, 45), Q.RELATIVE_HUMIDITY: (5, 100),
    Q.WATER_TEMPERATURE: (10, 38), Q.DISSOLVED_OXYGEN: (0, 25), Q.PH: (5.5, 10.5),
    Q.TURBIDITY: (0, 500), Q.CONDUCTIVITY: (50, 1500), Q.CHLOROPHYLL_A: (0, 500),
    Q.AMMONIUM: (0, 20), Q.RAINFALL: (0, 10), Q.WATER_DEPTH: (-5, 200), Q.FLOW_MOTORBIKE: (0, 600),
    Q.FLOW_CAR: (0, 200), Q.FLOW_BUS: (0, 20), Q.FLOW_TRUCK: (0, 60), Q.SPEED: (0, 120),
    Q.OCCUPANCY: (0, 100),
}
# fmt: on

AIR_INTERVAL_S = 60.0
BUOY_INTERVAL_S = 300.0
RAIN_INTERVAL_S = 60.0
FLOOD_INTERVAL_S = 60.0
TRAFFIC_INTERVAL_S = 60.0


def _sensors(quantities: Iterable[Quantity], interval_s: float) -> tuple[Sensor, ...]:
    return tuple(
        Sensor(q, interval_s, float(_VALID[q][0]), float(_VALID[q][1])) for q in quantities
    )


# --- air quality (domain.md §5.1) -------------------------------------------------------------
# (slug, name, district, lat, lon, station type, coords tag, network)
# fmt: off
_AIR = (
    ("hoan-kiem", "Hoàn Kiếm", "Hoàn Kiếm", 21.0289, 105.8522, "traffic", "P", "DONRE"),
    ("hang-dau", "Hàng Đậu", "Hoàn Kiếm", 21.0417, 105.8492, "traffic", "P", "DONRE"),
    ("thanh-cong", "Thành Công", "Ba Đình", 21.0195, 105.8135, "traffic", "P", "DONRE"),
    ("minh-khai", "Minh Khai – Bắc Từ Liêm", "Bắc Từ Liêm", 21.0536, 105.7355, "full", "P",
     "DONRE"),
    ("tay-mo", "Tây Mỗ", "Nam Từ Liêm", 21.005, 105.712, "residential", "P", "DONRE"),
    ("mo-lao", "Mỗ Lao", "Hà Đông", 20.9789, 105.7781, "residential", "P", "DONRE"),
    ("trung-yen", "Trung Yên 3 (Chi cục BVMT)", "Cầu Giấy", 21.016, 105.8, "full", "U", "DONRE"),
    ("kim-lien", "Kim Liên", "Đống Đa", 21.008, 105.838, "residential", "U", "DONRE"),
    ("tan-mai", "Tân Mai", "Hoàng Mai", 20.985, 105.85, "residential", "U", "DONRE"),
    ("pham-van-dong", "Phạm Văn Đồng", "Bắc Từ Liêm", 21.05, 105.781, "traffic", "U", "DONRE"),
    ("my-dinh", "Mỹ Đình", "Nam Từ Liêm", 21.02, 105.77, "residential", "U", "DONRE"),
    ("nguyen-van-cu", "556 Nguyễn Văn Cừ", "Long Biên", 21.048, 105.882, "full", "U", "CEM"),
)
# fmt: on
_TRAFFIC_WEIGHT = {"traffic": 1.0, "full": 0.6, "residential": 0.45}

# --- West Lake buoys (domain.md §4) ------------------------------------------------------------
# (slug, name, lat, lon, sewer influence on NH4: 1 = lake average)
# fmt: off
_BUOYS = (
    ("trich-sai", "Hồ Tây – Trích Sài", 21.0575, 105.814, 1.3),
    ("nhat-chieu", "Hồ Tây – Nhật Chiêu", 21.0655, 105.8265, 0.9),
    ("thanh-nien", "Hồ Tây – Thanh Niên", 21.049, 105.833, 1.2),
    ("nguyen-dinh-thi", "Hồ Tây – Nguyễn Đình Thi", 21.048, 105.821, 1.0),
)
# fmt: on

# --- rain gauges (domain.md §6.3, §6.6) --------------------------------------------------------
# (slug, name, district, lat, lon, operator)
# fmt: off
_GAUGES = (
    ("o-cho-dua", "Ô Chợ Dừa", "Đống Đa", 21.0205, 105.827, "Thoát nước Hà Nội"),
    ("van-ho", "Vân Hồ", "Hai Bà Trưng", 21.0135, 105.846, "Thoát nước Hà Nội"),
    ("lang", "Láng", "Đống Đa", 21.0197, 105.8068, "KTTV"),
    ("nguyen-khuyen", "Nguyễn Khuyến", "Đống Đa", 21.0268, 105.839, "Thoát nước Hà Nội"),
    ("yen-so", "Yên Sở", "Hoàng Mai", 20.968, 105.87, "Thoát nước Hà Nội"),
    ("linh-dam", "Linh Đàm", "Hoàng Mai", 20.965, 105.829, "Thoát nước Hà Nội"),
    ("tay-mo", "Tây Mỗ", "Nam Từ Liêm", 21.005, 105.74, "Thoát nước Hà Nội"),
    ("tay-ho", "Tây Hồ", "Tây Hồ", 21.066, 105.82, "Thoát nước Hà Nội"),
    ("thanh-xuan", "Thanh Xuân", "Thanh Xuân", 20.993, 105.81, "Thoát nước Hà Nội"),
    ("ha-dong", "Hà Đông", "Hà Đông", 20.978, 105.789, "Thoát nước Hà Nội"),
)
# fmt: on

# --- street flood hotspots (domain.md §6.5) ----------------------------------------------------
# (slug, hotspot, district, lat, lon, upstream gauge, coords tag,
#  concentration factor A, recession time constant h, lag min)
# fmt: off
_HOTSPOTS = (
    ("phan-boi-chau", "Phan Bội Châu × Lý Thường Kiệt", "Hoàn Kiếm", 21.0253, 105.8435,
     "nguyen-khuyen", "P", 14.0, 1.2, 12.0),
    ("thai-ha", "Tây Sơn × Thái Hà", "Đống Đa", 21.0118, 105.8201, "o-cho-dua", "P", 14.0, 1.5,
     12.0),
    ("thuy-khue", "Thụy Khuê (dốc La Pho)", "Tây Hồ", 21.0428, 105.8285, "tay-ho", "P", 10.0, 1.0,
     10.0),
    ("minh-khai", "Minh Khai (chân cầu Vĩnh Tuy)", "Hai Bà Trưng", 20.9997, 105.8675, "van-ho",
     "P", 12.0, 1.8, 15.0),
    ("nguyen-trai", "Nguyễn Trãi (trước ĐH KHXH&NV)", "Thanh Xuân", 20.9952, 105.8115,
     "thanh-xuan", "P", 13.0, 2.0, 14.0),
    ("thang-long", "Đại lộ Thăng Long × Lê Trọng Tấn", "Nam Từ Liêm", 21.0025, 105.7465, "tay-mo",
     "P", 14.0, 3.0, 15.0),
    ("pham-van-dong", "Phạm Văn Đồng (Xuân Đỉnh)", "Bắc Từ Liêm", 21.0555, 105.7825, "tay-ho",
     "P", 11.0, 1.5, 13.0),
    ("giai-phong", "Giải Phóng (bến xe Giáp Bát)", "Hoàng Mai", 20.9845, 105.8423, "linh-dam",
     "P", 12.0, 1.8, 13.0),
    ("nguyen-khuyen", "Nguyễn Khuyến", "Đống Đa", 21.027, 105.838, "nguyen-khuyen", "U", 14.0,
     1.3, 11.0),
    ("cua-bac", "Cửa Bắc", "Ba Đình", 21.041, 105.842, "nguyen-khuyen", "U", 12.0, 1.2, 12.0),
    ("duong-thanh", "Đường Thành", "Hoàn Kiếm", 21.032, 105.847, "nguyen-khuyen", "U", 11.0, 1.0,
     11.0),
    ("tran-cung", "Trần Cung", "Bắc Từ Liêm", 21.049, 105.79, "lang", "U", 11.0, 1.6, 13.0),
    ("nguyen-luong-bang", "Nguyễn Lương Bằng", "Đống Đa", 21.013, 105.827, "o-cho-dua", "U", 12.0,
     1.4, 12.0),
    ("lang-ha", "Láng Hạ", "Đống Đa", 21.014, 105.815, "lang", "U", 10.0, 1.2, 12.0),
    ("truong-chinh", "Trường Chinh", "Đống Đa", 21.0, 105.835, "o-cho-dua", "U", 11.0, 1.5, 13.0),
    ("lieu-giai", "Liễu Giai", "Ba Đình", 21.036, 105.819, "lang", "U", 10.0, 1.0, 11.0),
    ("doi-can", "Đội Cấn", "Ba Đình", 21.036, 105.829, "nguyen-khuyen", "U", 10.0, 1.0, 11.0),
    ("lo-duc", "Lò Đúc", "Hai Bà Trưng", 21.014, 105.857, "van-ho", "U", 11.0, 1.3, 12.0),
    ("van-quan", "Văn Quán (vùng trũng)", "Hà Đông", 20.978, 105.793, "ha-dong", "U", 12.0, 14.0,
     18.0),
    ("nguyen-xien", "Nguyễn Xiển", "Thanh Xuân", 20.986, 105.805, "thanh-xuan", "U", 11.0, 2.2,
     14.0),
)
# fmt: on
_DRAIN_MM_H_PER_A = 22.0  # drains keep up with ~22 mm/h over the catchment (<50 mm/2 h: dry)


@dataclass(frozen=True, slots=True)
class Corridor:
    """A traffic corridor, listed from its upstream (outer) end to its downstream end.

    Args:
        slug: id part (``tr-<slug>-<n>``).
        name: street name.
        path: polyline (lat, lon) from upstream to downstream [U estimates].
        districts: district of each detector, upstream first.
        free_flow_kmh: free-flow speed [U].
        capacity_pcu_h: capacity of the measured direction in PCU per hour [U].
        mix: vehicle mix: ``inner`` street, ``arterial`` or ``elevated`` (no motorbikes).
    """

    slug: str
    name: str
    path: tuple[tuple[float, float], ...]
    districts: tuple[str, ...]
    free_flow_kmh: float
    capacity_pcu_h: float
    mix: str


# fmt: off
_CORRIDORS = (
    Corridor("nguyen-trai", "Nguyễn Trãi", ((20.985, 105.79), (21.003, 105.82),),
             ("Thanh Xuân",) * 4, 45.0, 5400.0, "inner"),
    Corridor("giai-phong", "Giải Phóng", ((20.955, 105.843), (21.007, 105.841),),
             ("Hoàng Mai", "Hoàng Mai", "Hoàng Mai", "Đống Đa"), 45.0, 5400.0, "inner"),
    Corridor("lang", "Láng", ((21.03, 105.801), (21.003, 105.82),),
             ("Đống Đa",) * 3, 40.0, 4000.0, "inner"),
    Corridor("truong-chinh", "Trường Chinh", ((21.0, 105.842), (21.003, 105.82),),
             ("Hai Bà Trưng", "Đống Đa", "Thanh Xuân"), 40.0, 3600.0, "inner"),
    Corridor("pham-van-dong", "Phạm Văn Đồng", ((21.1, 105.79), (21.037, 105.778),),
             ("Bắc Từ Liêm", "Bắc Từ Liêm", "Bắc Từ Liêm", "Cầu Giấy"), 55.0, 6000.0, "arterial"),
    Corridor("ring-3", "Vành đai 3 trên cao",
             ((20.955, 105.843), (20.997, 105.8), (21.037, 105.778)),
             ("Hoàng Mai", "Thanh Xuân", "Nam Từ Liêm", "Cầu Giấy"), 75.0, 7000.0, "elevated"),
    Corridor("cau-giay", "Cầu Giấy", ((21.034, 105.796), (21.031, 105.812),),
             ("Cầu Giấy",) * 2, 40.0, 4000.0, "inner"),
    Corridor("kim-ma", "Kim Mã", ((21.031, 105.812), (21.03, 105.826),),
             ("Ba Đình",) * 2, 40.0, 3600.0, "inner"),
    Corridor("tay-son", "Tây Sơn", ((21.0032, 105.82), (21.0125, 105.8235),),
             ("Đống Đa",) * 2, 35.0, 3000.0, "inner"),
    Corridor("le-van-luong", "Lê Văn Lương", ((21.001, 105.7985), (21.0068, 105.8125),),
             ("Thanh Xuân", "Cầu Giấy"), 40.0, 4000.0, "inner"),
)
# fmt: on


def corridors() -> tuple[Corridor, ...]:
    """The traffic corridors of the fleet."""
    return _CORRIDORS


def _along(path: Sequence[tuple[float, float]], fraction: float) -> tuple[float, float]:
    """The point at ``fraction`` of a polyline's length (flat-earth is fine at city scale)."""
    legs = [math.dist(a, b) for a, b in itertools.pairwise(path)]
    target = fraction * sum(legs)
    for (a, b), leg in zip(itertools.pairwise(path), legs, strict=True):
        if target <= leg or leg == 0:
            t = target / leg if leg else 0.0
            return round(a[0] + t * (b[0] - a[0]), 5), round(a[1] + t * (b[1] - a[1]), 5)
        target -= leg
    return path[-1]


def _corridor_length_km(path: Sequence[tuple[float, float]]) -> float:
    return sum(math.dist(a, b) for a, b in itertools.pairwise(path)) * 111.0


def _traffic_stations() -> list[Station]:
    stations: list[Station] = []
    for corridor in _CORRIDORS:
        n = len(corridor.districts)
        length_km = _corridor_length_km(corridor.path)
        quantities: list[Quantity] = [q for q in TRAFFIC_QUANTITIES if q is not Q.FLOW_MOTORBIKE]
        if corridor.mix != "elevated":  # motorbikes are banned on the elevated Ring 3
            quantities.insert(0, Q.FLOW_MOTORBIKE)
        for index, district in enumerate(corridor.districts, start=1):
            fraction = (index - 0.5) / n
            lat, lon = _along(corridor.path, fraction)
            stations.append(
                Station(
                    StationId(f"tr-{corridor.slug}-{index}"),
                    Domain.TRAFFIC,
                    f"{corridor.name} ({index}/{n})",
                    district,
                    lat,
                    lon,
                    "traffic",
                    _sensors(quantities, TRAFFIC_INTERVAL_S),
                    {
                        "corridor": corridor.slug,
                        "position": index,
                        "km_from_start": round(fraction * length_km, 2),
                        "direction": "inbound",
                        "free_flow_kmh": corridor.free_flow_kmh,
                        "capacity_pcu_h": corridor.capacity_pcu_h,
                        "mix": corridor.mix,
                        "coords": "U",
                    },
                )
            )
    return stations


def _nearest_corridor(lat: float, lon: float, traffic: Sequence[Station]) -> tuple[str, float]:
    best = min(traffic, key=lambda s: math.dist((lat, lon), (s.lat, s.lon)))
    return str(best.attributes["corridor"]), math.dist((lat, lon), (best.lat, best.lon)) * 111.0


def _air_stations(traffic: Sequence[Station]) -> list[Station]:
    stations = []
    for slug, name, district, lat, lon, kind, tag, network in _AIR:
        corridor, distance_km = _nearest_corridor(lat, lon, traffic)
        stations.append(
            Station(
                StationId(f"aq-{slug}"),
                Domain.AIR,
                name,
                district,
                lat,
                lon,
                "air_quality",
                _sensors(AIR_QUANTITIES, AIR_INTERVAL_S),
                {
                    "station_type": kind,
                    "network": network,
                    "coords": tag,
                    "nearest_corridor": corridor,
                    "corridor_km": round(distance_km, 2),
                    "traffic_weight": _TRAFFIC_WEIGHT[kind],
                },
            )
        )
    return stations


def _buoys() -> list[Station]:
    return [
        Station(
            StationId(f"wl-buoy-{slug}"),
            Domain.WATER,
            name,
            "Tây Hồ",
            lat,
            lon,
            "buoy",
            _sensors(BUOY_QUANTITIES, BUOY_INTERVAL_S),
            {"lake": "Hồ Tây", "coords": "U", "sewer_influence": sewer},
        )
        for slug, name, lat, lon, sewer in _BUOYS
    ]


def _gauges() -> list[Station]:
    return [
        Station(
            StationId(f"rg-{slug}"),
            Domain.FLOOD,
            f"Trạm đo mưa {name}",
            district,
            lat,
            lon,
            "rain_gauge",
            _sensors((Q.RAINFALL,), RAIN_INTERVAL_S),
            {"operator": operator, "coords": "U", "bucket_mm": 0.2},
        )
        for slug, name, district, lat, lon, operator in _GAUGES
    ]


def _flood_sensors() -> list[Station]:
    return [
        Station(
            StationId(f"fd-{slug}"),
            Domain.FLOOD,
            f"Điểm ngập {hotspot}",
            district,
            lat,
            lon,
            "flood_depth",
            _sensors((Q.WATER_DEPTH,), FLOOD_INTERVAL_S),
            {
                "hotspot": hotspot,
                "upstream_gauge": f"rg-{gauge}",
                "coords": tag,
                "concentration": area,
                "drain_mm_h": round(area * _DRAIN_MM_H_PER_A, 1),
                "recession_h": recession_h,
                "lag_min": lag_min,
                "max_depth_cm": 120.0,
            },
        )
        for slug, hotspot, district, lat, lon, gauge, tag, area, recession_h, lag_min in _HOTSPOTS
    ]


def hanoi_fleet() -> list[Station]:
    """The whole simulated fleet, in a fixed order (air, water, rain, flood, traffic).

    >>> fleet = hanoi_fleet()
    >>> len(fleet), fleet[0].station_id, fleet[0].sensors[0].interval_s
    (76, 'aq-hoan-kiem', 60.0)
    """
    traffic = _traffic_stations()
    return [*_air_stations(traffic), *_buoys(), *_gauges(), *_flood_sensors(), *traffic]


def select_stations(fleet: Sequence[Station], patterns: Iterable[str]) -> list[Station]:
    """Keep the stations whose id matches any shell-style pattern (all when none is given).

    >>> [s.station_id for s in select_stations(hanoi_fleet(), ["rg-o*", "fd-thai-ha"])]
    ['rg-o-cho-dua', 'fd-thai-ha']
    """
    wanted = [p.strip() for p in patterns if p.strip()]
    if not wanted:
        return list(fleet)
    return [s for s in fleet if any(fnmatchcase(s.station_id, p) for p in wanted)]
