"""The city dashboards: flooding, West Lake and traffic (air quality: ``boards_air``).

Reference values and their sources are in :mod:`levels`.
"""

from __future__ import annotations

from dashkit import Json, Layout, alert_annotation, dashboard, query_var
from levels import DO_DANGER_MG_L, DO_STEPS, FLOOD_STEPS, RAIN_2H_STEPS, SPEED_STEPS
from panels import bargauge, cell_colour_override, table, timeseries
from sqlparts import (
    CHLOROPHYLL_A,
    DISSOLVED_OXYGEN,
    FLOWS,
    OCCUPANCY,
    PH,
    RAINFALL,
    SPEED,
    WATER_DEPTH,
    WATER_TEMPERATURE,
    district_var_sql,
    has_quantity,
    latest_by_station,
    quantity_series,
    station_var_sql,
)


def district_station_vars(domain: str, station: str, label: str, quantity: str) -> list[Json]:
    """A district variable, and a station variable of the stations measuring ``quantity``."""
    where = f"st.domain = '{domain}' AND st.district IN ($district) AND {has_quantity(quantity)}"
    return [
        query_var("district", "Quận / District", district_var_sql(domain)),
        query_var(station, label, station_var_sql(where)),
    ]


def flooding() -> Json:
    """Street flood depth per hotspot with the 10/20/30/50 cm levels, and rain per gauge."""
    rain_sql = f"""
SELECT st.station_id AS "Trạm / Station", st.district AS "Quận / District",
  sum(r.avg * r.n) FILTER (WHERE $__timeFilter(r.bucket)) AS "Trong khoảng / In range (mm)",
  sum(r.avg * r.n) FILTER (WHERE r.bucket >= now() - interval '1 hour') AS "1 giờ / 1 h (mm)",
  sum(r.avg * r.n) FILTER (WHERE r.bucket >= now() - interval '2 hours') AS "2 giờ / 2 h (mm)"
FROM readings_1m r
JOIN sensors s USING (sensor_id)
JOIN stations st USING (station_id)
WHERE s.quantity = '{RAINFALL}'
  AND st.station_id IN ($gauge)
  AND r.bucket >= least($__timeFrom()::timestamptz, now() - interval '2 hours')
GROUP BY 1, 2
ORDER BY 3 DESC NULLS LAST"""
    flood_where = f"st.district IN ($district) AND {has_quantity(WATER_DEPTH)}"
    rain_where = f"st.district IN ($district) AND {has_quantity(RAINFALL)}"
    levels = (
        "Mức dự án [U]: 10 theo dõi, 20 cảnh báo, 30 nghiêm trọng, 50 cực kỳ (cm) / "
        "project levels, not official thresholds."
    )
    layout = Layout()
    layout.add(
        bargauge(
            "Độ sâu ngập hiện tại / Current flood depth (cm)",
            latest_by_station(WATER_DEPTH, "cm", station_var="hotspot"),
            unit="suffix: cm",
            steps=FLOOD_STEPS,
            max_value=60,
            w=8,
            h=10,
            description=levels,
        ),
        timeseries(
            "Độ sâu ngập / Flood depth (cm)",
            quantity_series(WATER_DEPTH, "cm", station_var="hotspot", agg="max"),
            unit="suffix: cm",
            steps=FLOOD_STEPS,
            threshold_style="dashed",
            w=16,
            h=10,
            description=levels + " Giá trị lớn nhất mỗi khoảng / maximum per interval.",
        ),
        timeseries(
            "Lượng mưa / Rainfall (mm per interval)",
            quantity_series(RAINFALL, "mm", station_var="gauge", agg="sum"),
            unit="lengthmm",
            bars=True,
            w=16,
            h=9,
            description="Tổng lượng mưa mỗi khoảng thời gian / rain total per plotted interval.",
        ),
        table(
            "Mưa tích lũy / Accumulated rainfall (mm)",
            rain_sql,
            w=8,
            h=9,
            overrides=[cell_colour_override("2 giờ / 2 h (mm)", RAIN_2H_STEPS)],
            description="2 giờ: <50 mm thường không ngập, 50-100 mm điểm đen ngập, >100 mm quá tải "
            "(Công ty Thoát nước HN) / 2-h rule of thumb of the Hanoi drainage company.",
        ),
    )
    return dashboard(
        "hanoi-flooding",
        "Ngập úng / Flooding",
        "Độ sâu ngập tại điểm đen và lượng mưa / "
        "street flood depth per hotspot and rain per gauge.",
        layout,
        variables=[
            query_var("district", "Quận / District", district_var_sql("flood")),
            query_var("hotspot", "Điểm ngập / Hotspot", station_var_sql(flood_where)),
            query_var("gauge", "Trạm đo mưa / Rain gauge", station_var_sql(rain_where)),
        ],
        annotations=[alert_annotation("flood")],
        tags=["flood"],
    )


def west_lake() -> Json:
    """Dissolved oxygen, temperature, pH and chlorophyll-a per buoy."""
    layout = Layout()
    layout.add(
        bargauge(
            "Oxy hoà tan hiện tại / Current DO (mg/L)",
            latest_by_station(DISSOLVED_OXYGEN, "mg/L", station_var="buoy"),
            unit="suffix: mg/L",
            steps=DO_STEPS,
            max_value=15,
            w=8,
            h=9,
            description="Đỏ < 2 mg/L: nguy hiểm cho cá; cam < 4 [U] / red: danger for fish.",
        ),
        timeseries(
            "Oxy hoà tan / Dissolved oxygen (mg/L)",
            quantity_series(DISSOLVED_OXYGEN, "DO", station_var="buoy"),
            unit="suffix: mg/L",
            steps=[(None, "red"), (DO_DANGER_MG_L, "green")],
            threshold_style="dashed",
            w=16,
            h=9,
            description="Đường 2 mg/L: ngưỡng nguy hiểm thiếu oxy / "
            "2 mg/L hypoxia danger line [U].",
        ),
        timeseries(
            "Nhiệt độ nước / Water temperature (°C)",
            quantity_series(WATER_TEMPERATURE, "°C", station_var="buoy"),
            unit="celsius",
            w=8,
        ),
        timeseries("pH / pH", quantity_series(PH, "pH", station_var="buoy"), unit="none", w=8),
        timeseries(
            "Chất diệp lục a / Chlorophyll-a (µg/L)",
            quantity_series(CHLOROPHYLL_A, "chl-a", station_var="buoy"),
            unit="suffix: µg/L",
            w=8,
            description="Tảo nở hoa khi > 100 µg/L [U] / bloom above ~100 µg/L.",
        ),
    )
    where = f"st.domain = 'water' AND {has_quantity(DISSOLVED_OXYGEN)}"
    return dashboard(
        "hanoi-west-lake",
        "Hồ Tây / West Lake",
        "Chất lượng nước theo phao / water quality per buoy (DO, nhiệt độ, pH, diệp lục).",
        layout,
        variables=[query_var("buoy", "Phao / Buoy", station_var_sql(where))],
        annotations=[alert_annotation("water")],
        tags=["water"],
    )


def traffic() -> Json:
    """Speed, flows and occupancy per corridor."""
    flows = ", ".join(f"'{q}'" for q in FLOWS)
    flow_sql = f"""
SELECT
  $__timeGroupAlias(r.bucket, $__interval),
  s.station_id AS station,
  sum(r.avg * r.n) * 3600000.0 / $__interval_ms AS "veh/h"
FROM readings_1m r
JOIN sensors s USING (sensor_id)
WHERE s.quantity IN ({flows})
  AND s.station_id IN ($corridor)
  AND $__timeFilter(r.bucket)
GROUP BY 1, 2
ORDER BY 1, 2"""
    by_type_sql = f"""
SELECT
  $__timeGroupAlias(r.bucket, $__interval),
  CASE s.quantity WHEN 'flow_motorbike' THEN 'Xe máy / Motorbike'
                  WHEN 'flow_car' THEN 'Ô tô / Car'
                  WHEN 'flow_bus' THEN 'Xe buýt / Bus'
                  ELSE 'Xe tải / Truck' END AS vehicle,
  sum(r.avg * r.n) * 3600000.0 / $__interval_ms AS "veh/h"
FROM readings_1m r
JOIN sensors s USING (sensor_id)
WHERE s.quantity IN ({flows})
  AND s.station_id IN ($corridor)
  AND $__timeFilter(r.bucket)
GROUP BY 1, 2
ORDER BY 1, 2"""
    speed_note = "Màu theo tốc độ [U]: < 10 ùn tắc, < 20 chậm / colours are a project convention."
    layout = Layout()
    layout.add(
        bargauge(
            "Tốc độ hiện tại / Current speed (km/h)",
            latest_by_station(SPEED, "km/h", station_var="corridor"),
            unit="velocitykmh",
            steps=SPEED_STEPS,
            max_value=80,
            w=8,
            h=9,
            description=speed_note,
        ),
        timeseries(
            "Tốc độ trung bình / Mean speed (km/h)",
            quantity_series(SPEED, "km/h", station_var="corridor"),
            unit="velocitykmh",
            w=16,
            h=9,
        ),
        timeseries(
            "Lưu lượng / Traffic flow (xe/giờ / veh/h)",
            flow_sql,
            unit="short",
            w=12,
            description="Tổng mọi loại xe, quy ra mỗi giờ / all vehicle types, per hour.",
        ),
        timeseries(
            "Lưu lượng theo loại xe / Flow by vehicle type (veh/h)",
            by_type_sql,
            unit="short",
            bars=True,
            stacked=True,
            display_name="${__field.labels.vehicle}",
            w=12,
            description="Tổng các tuyến đã chọn / sum over the selected corridors.",
        ),
        timeseries(
            "Độ chiếm dụng / Occupancy (%)",
            quantity_series(OCCUPANCY, "%", station_var="corridor"),
            unit="percent",
            w=24,
            h=7,
        ),
    )
    return dashboard(
        "hanoi-traffic",
        "Giao thông / Traffic",
        "Tốc độ và lưu lượng theo tuyến / speed and flows per corridor.",
        layout,
        variables=district_station_vars("traffic", "corridor", "Tuyến / Corridor", SPEED),
        annotations=[alert_annotation("traffic")],
        tags=["traffic"],
    )
