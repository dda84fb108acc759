"""The operations dashboards: city overview and ingest health (alerts: ``boards_alerts``).

Ingest counters come from ``service_heartbeats.stats`` (one row per service instance, refreshed
every few seconds by :mod:`ingest.service`): ``received_records = stored + duplicates +
quarantined + pending_records`` holds at every instant, so the "unaccounted" figure must be 0.
"""

from __future__ import annotations

from typing import Final

from boards_alerts import severity_counts, severity_overrides
from dashkit import BLUE, GREEN, GREY, ORANGE, RED, Json, Layout, Panel, alert_annotation, dashboard
from levels import AQI_STEPS, FLOOD_STEPS
from panels import (
    bargauge,
    cell_colour_override,
    color_override,
    stat,
    table,
    threshold_override,
    timeseries,
)
from sqlparts import AQI_INDEX, WATER_DEPTH

INGEST_COUNTERS: Final = (
    ("received_records", "Nhận / Received"),
    ("stored", "Đã lưu / Stored"),
    ("duplicates", "Trùng lặp / Duplicates"),
    ("quarantined", "Cách ly / Quarantined"),
    ("pending_records", "Đang xử lý / Pending"),
)
HEARTBEAT_SILENT_S: Final = 30


def _counter(key: str) -> str:
    return f"coalesce((stats->>'{key}')::float8, 0)"


def _stored_rate_sql() -> str:
    return """
SELECT
  $__timeGroupAlias(r.bucket, $__interval),
  st.domain AS domain,
  sum(r.n)::float8 * 1000 / $__interval_ms AS "readings/s"
FROM readings_1m r
JOIN sensors s USING (sensor_id)
JOIN stations st USING (station_id)
WHERE $__timeFilter(r.bucket)
GROUP BY 1, 2
ORDER BY 1, 2"""


def _stored_rate_panel(w: int) -> Panel:
    return timeseries(
        "Tốc độ ghi dữ liệu / Stored readings per second",
        _stored_rate_sql(),
        unit="short",
        stacked=True,
        display_name="${__field.labels.domain}",
        w=w,
        description="Theo thời điểm đo, từ readings_1m / by measurement time, per domain.",
    )


def city_overview() -> Json:
    """Station states, open alerts, ingest rate and the latest AQI per station."""
    states_sql = """
SELECT
  count(*) FILTER (WHERE ss.state = 'online') AS "Trực tuyến / Online",
  count(*) FILTER (WHERE ss.state = 'stale') AS "Chậm / Stale",
  count(*) FILTER (WHERE ss.state = 'offline') AS "Mất kết nối / Offline",
  count(*) FILTER (WHERE ss.state IS NULL) AS "Chưa rõ / Unknown"
FROM stations st
LEFT JOIN station_state ss USING (station_id)"""
    states = [
        ("Trực tuyến / Online", GREEN),
        ("Chậm / Stale", ORANGE),
        ("Mất kết nối / Offline", RED),
        ("Chưa rõ / Unknown", GREY),
    ]
    aqi_sql = f"""
SELECT DISTINCT ON (i.station_id)
  i.station_id AS "Trạm / Station", st.name AS "Tên / Name", st.district AS "Quận / District",
  i.value AS "VN_AQI", i.level AS "Mức / Level", i.time AS "Giờ / Hour"
FROM indices i
JOIN stations st USING (station_id)
WHERE i.index = '{AQI_INDEX}' AND i.time > now() - interval '3 hours'
ORDER BY i.station_id, i.time DESC"""
    flooded_sql = f"""
SELECT l.station_id AS "Điểm / Hotspot", l.value AS "cm"
FROM latest_readings l
WHERE l.quantity = '{WATER_DEPTH}' AND l.value >= 10 AND l.time > now() - interval '1 hour'
ORDER BY 2 DESC"""
    services_sql = f"""
SELECT
  count(*) FILTER (WHERE seen_at > now() - interval '{HEARTBEAT_SILENT_S} seconds')
    AS "Hoạt động / Alive",
  count(*) FILTER (WHERE seen_at <= now() - interval '{HEARTBEAT_SILENT_S} seconds')
    AS "Mất tín hiệu / Silent"
FROM service_heartbeats"""
    layout = Layout()
    layout.add(
        stat(
            "Trạng thái trạm / Station states",
            states_sql,
            w=9,
            overrides=[color_override(n, c) for n, c in states],
        ),
        stat(
            "Cảnh báo đang mở / Open alerts by severity",
            severity_counts("a.state <> 'cleared'"),
            w=10,
            overrides=severity_overrides(),
        ),
        stat(
            "Dịch vụ / Service instances",
            services_sql,
            w=5,
            overrides=[
                color_override("Hoạt động / Alive", GREEN),
                color_override("Mất tín hiệu / Silent", RED),
            ],
        ),
        _stored_rate_panel(12),
        table(
            "VN_AQI mới nhất / Latest VN_AQI per station",
            aqi_sql,
            w=12,
            overrides=[cell_colour_override("VN_AQI", AQI_STEPS)],
        ),
        bargauge(
            "Điểm đang ngập ≥ 10 cm / Flooded hotspots ≥ 10 cm",
            flooded_sql,
            unit="suffix: cm",
            max_value=60,
            w=24,
            h=6,
            steps=FLOOD_STEPS,
            description="Giá trị mới nhất trong 1 giờ qua / latest value within 1 h [U levels].",
        ),
    )
    return dashboard(
        "hanoi-city-overview",
        "Tổng quan thành phố / City overview",
        "Trạng thái trạm, cảnh báo, tốc độ ghi và VN_AQI / stations, alerts, ingest, air quality.",
        layout,
        annotations=[alert_annotation(None)],
        tags=["overview"],
    )


def ingest_health() -> Json:
    """Counters from heartbeats, quarantine by reason, and ingest lag."""
    totals = ",\n  ".join(f'sum({_counter(k)}) AS "{label}"' for k, label in INGEST_COUNTERS)
    unaccounted = " - ".join(_counter(k) for k, _ in INGEST_COUNTERS)
    totals_sql = f"""
SELECT
  {totals},
  sum({unaccounted}) AS "Chênh lệch / Unaccounted"
FROM service_heartbeats
WHERE service = 'ingest'"""
    per_instance = ",\n  ".join(f'{_counter(k)} AS "{label}"' for k, label in INGEST_COUNTERS)
    instances_sql = f"""
SELECT service AS "Dịch vụ / Service", instance AS "Phiên bản / Instance",
  started_at AS "Khởi động / Started", seen_at AS "Nhịp cuối / Last heartbeat",
  round(extract(epoch FROM now() - seen_at)::numeric, 1) AS "Tuổi nhịp / Heartbeat age (s)",
  {per_instance},
  (stats->>'lag_s')::float8 AS "Độ trễ / Lag (s)",
  stats->>'strategy' AS "Lưu trữ / Storage"
FROM service_heartbeats
ORDER BY service, instance"""
    lag_sql = """
SELECT
  $__timeGroupAlias(r.time, $__interval),
  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.received_at - r.time)::float8)
    AS "p50",
  percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM r.received_at - r.time)::float8)
    AS "p95",
  max(extract(epoch FROM r.received_at - r.time)::float8) AS "max"
FROM readings r
WHERE $__timeFilter(r.time)
GROUP BY 1
ORDER BY 1"""
    # Exact counts (quarantine_counts): beyond a publisher's rate, refused messages are
    # counted there without a row of their own in quarantine (docs/security.md).
    reasons_sql = """
SELECT
  $__timeGroupAlias(c.window_start, $__interval),
  c.reason AS reason,
  sum(c.messages)::float8 AS "messages"
FROM quarantine_counts c
WHERE $__timeFilter(c.window_start)
GROUP BY 1, 2
ORDER BY 1, 2"""
    by_reason_sql = """
SELECT q.reason AS "Lý do / Reason", count(*) AS "Tin nhắn / Messages",
  sum(q.readings) AS "Bản ghi / Readings", min(q.received_at) AS "Đầu tiên / First",
  max(q.received_at) AS "Gần nhất / Last",
  count(*) FILTER (WHERE q.replayed_at IS NULL) AS "Chưa xử lý lại / Not replayed"
FROM quarantine q
WHERE $__timeFilter(q.received_at)
GROUP BY 1
ORDER BY 2 DESC"""
    latest_q_sql = """
SELECT q.received_at AS "Nhận lúc / Received", q.topic AS "Chủ đề / Topic",
  q.reason AS "Lý do / Reason", q.detail AS "Chi tiết / Detail",
  q.station_id AS "Trạm / Station", q.quantity AS "Đại lượng / Quantity",
  q.replay_outcome AS "Xử lý lại / Replay"
FROM quarantine q
WHERE $__timeFilter(q.received_at)
ORDER BY q.received_at DESC
LIMIT 100"""
    age = [(None, GREEN), (15, ORANGE), (HEARTBEAT_SILENT_S, RED)]
    layout = Layout()
    layout.add(
        stat(
            "Bộ đếm ingest / Ingest counters (all instances)",
            totals_sql,
            w=24,
            unit="short",
            color_mode="value",
            steps=[(None, BLUE)],
            overrides=[
                threshold_override("Chênh lệch / Unaccounted", [(None, RED), (0, GREEN), (1, RED)])
            ],
            description="Nhận = Đã lưu + Trùng lặp + Cách ly + Đang xử lý; "
            "chênh lệch phải bằng 0 / "
            "received = stored + duplicates + quarantined + pending.",
        ),
        table(
            "Phiên bản dịch vụ / Service instances",
            instances_sql,
            w=24,
            h=6,
            overrides=[cell_colour_override("Tuổi nhịp / Heartbeat age (s)", age)],
        ),
        _stored_rate_panel(12),
        timeseries(
            "Độ trễ ingest / Ingest lag (s)",
            lag_sql,
            unit="s",
            display_name=None,
            time_from="1h",
            w=12,
            description="Thời điểm nhận trừ thời điểm đo, giờ gần nhất / "
            "received_at - time, "
            "last hour of raw readings.",
        ),
        timeseries(
            "Cách ly theo lý do / Quarantined messages by reason",
            reasons_sql,
            unit="short",
            bars=True,
            stacked=True,
            interval="5m",
            display_name="${__field.labels.reason}",
            w=12,
        ),
        table("Cách ly theo lý do / Quarantine by reason", by_reason_sql, w=12),
        table("Tin nhắn cách ly gần nhất / Latest quarantined messages", latest_q_sql, w=24),
    )
    return dashboard(
        "hanoi-ingest-health",
        "Sức khỏe ingest / Ingest health",
        "Bộ đếm, cách ly, độ trễ / counters from heartbeats, quarantine by reason, lag.",
        layout,
        tags=["ops"],
        refresh="10s",
        time_from="now-3h",
    )
