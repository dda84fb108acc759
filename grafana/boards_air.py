"""The air-quality dashboard: PM2.5, PM10 and NO2 against QCVN 05:2023, hourly VN_AQI."""

from __future__ import annotations

from typing import Final

from boards_city import district_station_vars
from dashkit import Json, Layout, alert_annotation, dashboard
from levels import AQI_STEPS, QCVN_NO2_1H, QCVN_PM10_24H, QCVN_PM25_24H, limit_line
from panels import cell_colour_override, table, timeseries
from sqlparts import (
    AQI_INDEX,
    NO2,
    PM10,
    PM25,
    hourly_series,
    quantity_series,
    rolling_24h_series,
)

UGM3: Final = "suffix: µg/m³"


def air_quality() -> Json:
    """PM2.5, PM10, NO2 per station against QCVN 05:2023, and hourly VN_AQI."""
    aqi_sql = f"""
SELECT i.time AS "time", i.station_id AS station, i.value AS "VN_AQI"
FROM indices i
WHERE i.index = '{AQI_INDEX}'
  AND i.station_id IN ($station)
  AND $__timeFilter(i.time)
ORDER BY 1, 2"""
    latest_sql = f"""
SELECT DISTINCT ON (i.station_id)
  i.station_id AS "Trạm / Station", st.district AS "Quận / District",
  i.value AS "VN_AQI", i.level AS "Mức / Level", i.dominant AS "Chất chính / Dominant",
  i.time AS "Giờ / Hour"
FROM indices i
JOIN stations st USING (station_id)
WHERE i.index = '{AQI_INDEX}'
  AND i.station_id IN ($station)
  AND i.time > now() - interval '3 hours'
ORDER BY i.station_id, i.time DESC"""
    qcvn = "QCVN 05:2023/BTNMT"
    layout = Layout()
    layout.row("VN_AQI theo giờ / Hourly VN_AQI (QĐ 1459/QĐ-TCMT)")
    layout.add(
        timeseries(
            "Chỉ số VN_AQI theo giờ / Hourly VN_AQI",
            aqi_sql,
            steps=AQI_STEPS,
            threshold_style="area",
            interval=None,
            w=16,
            h=9,
            description="Nền màu theo 6 mức của QĐ 1459 / "
            "background bands are the six official levels.",
        ),
        table(
            "VN_AQI mới nhất / Latest VN_AQI",
            latest_sql,
            w=8,
            h=9,
            overrides=[cell_colour_override("VN_AQI", AQI_STEPS)],
            description="Giờ gần nhất trong 3 giờ qua / most recent hour within the last 3 h.",
        ),
    )
    layout.row("Nồng độ / Concentrations (µg/m³)")
    layout.add(
        timeseries(
            "Bụi PM2.5 / PM2.5 (µg/m³)",
            quantity_series(PM25, "PM2.5"),
            unit=UGM3,
            steps=limit_line(QCVN_PM25_24H),
            threshold_style="dashed",
            w=8,
            description=f"Đường tham chiếu: {qcvn} trung bình 24 giờ 45 µg/m³ (từ 1/1/2026) / "
            "reference line: 24-h limit; compare 24-h means below, not single minutes.",
        ),
        timeseries(
            "Bụi PM10 / PM10 (µg/m³)",
            quantity_series(PM10, "PM10"),
            unit=UGM3,
            steps=limit_line(QCVN_PM10_24H),
            threshold_style="dashed",
            w=8,
            description=f"Đường tham chiếu: {qcvn} trung bình 24 giờ 100 µg/m³ / 24-h limit.",
        ),
        timeseries(
            "NO2 / NO2 (µg/m³)",
            quantity_series(NO2, "NO2"),
            unit=UGM3,
            steps=limit_line(QCVN_NO2_1H),
            threshold_style="dashed",
            w=8,
            description=f"Đường tham chiếu: {qcvn} trung bình 1 giờ 200 µg/m³ / 1-h limit.",
        ),
    )
    layout.row(f"So với quy chuẩn / Against {qcvn}")
    layout.add(
        timeseries(
            "PM2.5 trung bình 24 giờ / PM2.5 24-h rolling mean (µg/m³)",
            rolling_24h_series(PM25, "PM2.5 24h"),
            unit=UGM3,
            steps=limit_line(QCVN_PM25_24H),
            threshold_style="line+area",
            interval="1h",
            w=8,
        ),
        timeseries(
            "PM10 trung bình 24 giờ / PM10 24-h rolling mean (µg/m³)",
            rolling_24h_series(PM10, "PM10 24h"),
            unit=UGM3,
            steps=limit_line(QCVN_PM10_24H),
            threshold_style="line+area",
            interval="1h",
            w=8,
        ),
        timeseries(
            "NO2 trung bình 1 giờ / NO2 hourly mean (µg/m³)",
            hourly_series(NO2, "NO2 1h"),
            unit=UGM3,
            steps=limit_line(QCVN_NO2_1H),
            threshold_style="line+area",
            interval="1h",
            w=8,
        ),
    )
    return dashboard(
        "hanoi-air-quality",
        "Chất lượng không khí / Air quality",
        "PM2.5, PM10, NO2 theo trạm và VN_AQI theo giờ / per station, with QCVN 05:2023 lines.",
        layout,
        variables=district_station_vars("air", "station", "Trạm / Station", PM25),
        annotations=[alert_annotation("air")],
        tags=["air"],
    )
