"""A small, deterministic city in the database, so every dashboard query returns rows.

Readings every five minutes over ``SEED_FROM - 26 h .. SEED_TO`` (the 24-hour rolling panels
read a day before the range). "Now"-relative rows (latest values, recent VN_AQI, heartbeats)
are written relative to ``now()``.

The rollups are materialised up to the middle of the range only, so queries cross the
boundary between the materialised and the live arm of ``readings_1m``/``readings_1h``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg

from db import StrategyName

SEED_FROM: Final = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
SEED_TO: Final = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)

# station, domain, name, district, kind, quantities (quantity, unit)
STATIONS: Final = (
    ("aq-hoan-kiem", "air", "Hoàn Kiếm", "Hoàn Kiếm", "air",
     (("pm25", "ug/m3"), ("pm10", "ug/m3"), ("no2", "ug/m3"))),
    ("aq-cau-giay", "air", "Cầu Giấy", "Cầu Giấy", "air",
     (("pm25", "ug/m3"), ("pm10", "ug/m3"), ("no2", "ug/m3"))),
    ("wl-trich-sai", "water", "Trích Sài", "Tây Hồ", "buoy",
     (("dissolved_oxygen", "mg/L"), ("water_temperature", "Cel"), ("ph", "pH"),
      ("chlorophyll_a", "ug/L"))),
    ("wl-thanh-nien", "water", "Thanh Niên", "Tây Hồ", "buoy",
     (("dissolved_oxygen", "mg/L"), ("water_temperature", "Cel"), ("ph", "pH"),
      ("chlorophyll_a", "ug/L"))),
    ("fd-thai-ha", "flood", "Thái Hà", "Đống Đa", "flood_depth", (("water_depth", "cm"),)),
    ("rg-lang", "flood", "Láng", "Đống Đa", "rain_gauge", (("rainfall", "mm"),)),
    ("tr-nguyen-trai", "traffic", "Nguyễn Trãi", "Thanh Xuân", "traffic",
     (("speed", "km/h"), ("occupancy", "%"), ("flow_motorbike", "veh"), ("flow_car", "veh"),
      ("flow_bus", "veh"), ("flow_truck", "veh"))),
)  # fmt: skip

_SQL: Final = """
SELECT hanoi_ensure_partitions(%(day0)s::date, %(day1)s::date);

INSERT INTO readings (time, sensor_id, value, quality, received_at)
SELECT t, s.sensor_id,
       greatest(0, 20 + 15 * sin(extract(epoch FROM t) / 3600.0 + s.sensor_id)),
       0, t + interval '2 seconds' * (1 + s.sensor_id %% 3)
FROM sensors s,
     generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '5 minutes') t;

INSERT INTO latest (sensor_id, time, value, quality, received_at)
SELECT sensor_id, now() - interval '1 minute', 25, 0, now() FROM sensors;

INSERT INTO sensor_status (station_id, at, state, reason) VALUES
  ('aq-hoan-kiem', %(start)s, 'online', NULL),
  ('aq-cau-giay', %(start)s, 'offline', 'last will'),
  ('fd-thai-ha', %(start)s, 'stale', 'no data');

INSERT INTO indices (time, station_id, index, value, level, dominant)
SELECT t, st, 'VN_AQI', 40 + (extract(hour FROM t) * 7)::int %% 200, 'Trung bình', 'pm25'
FROM unnest(ARRAY['aq-hoan-kiem', 'aq-cau-giay']) st,
     generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '1 hour') t
UNION ALL
SELECT date_trunc('hour', now()) - interval '1 hour', st, 'VN_AQI', 160, 'Xấu', 'pm25'
FROM unnest(ARRAY['aq-hoan-kiem', 'aq-cau-giay']) st;

INSERT INTO alerts (dedup_key, rule, category, severity, state, station_id, quantity, domain,
                    district, title_vi, title_en, message_vi, message_en, value, threshold,
                    observed_at, raised_at, cleared_at, cleared_by)
VALUES
  ('flood_depth:fd-thai-ha', 'flood_depth', 'event', 'severe', 'raised', 'fd-thai-ha',
   'water_depth', 'flood', 'Đống Đa', 'Ngập sâu', 'Deep flooding', 'm', 'm', 34, 30,
   %(mid)s, %(mid)s, NULL, NULL),
  ('pm25:aq-hoan-kiem', 'pm25_24h', 'event', 'moderate', 'acknowledged', 'aq-hoan-kiem',
   'pm25', 'air', 'Hoàn Kiếm', 'Bụi mịn', 'Fine dust', 'm', 'm', 60, 45,
   %(mid)s, %(mid)s, NULL, NULL),
  ('stuck:wl-trich-sai.ph', 'flatline', 'sensor_health', 'minor', 'cleared', 'wl-trich-sai',
   'ph', NULL, 'Tây Hồ', 'Cảm biến kẹt', 'Stuck sensor', 'm', 'm', 7, NULL,
   %(early)s, %(early)s, %(mid)s, 'operator-1'),
  ('congestion:tr-nguyen-trai', 'congestion', 'event', 'info', 'raised', 'tr-nguyen-trai',
   'speed', 'traffic', 'Thanh Xuân', 'Ùn tắc', 'Congestion', 'm', 'm', 8, 10,
   %(mid)s, %(mid)s, NULL, NULL);

INSERT INTO alert_events (alert_id, at, action, actor, severity)
SELECT alert_id, raised_at, 'raised', 'processing', severity FROM alerts
UNION ALL
SELECT alert_id, cleared_at, 'cleared', 'operator-1', severity FROM alerts
WHERE cleared_at IS NOT NULL;

INSERT INTO quarantine (received_at, topic, payload, reason, detail, station_id, quantity)
SELECT t, 'hanoi/v1/air/aq-hoan-kiem/telemetry', convert_to('{"n":' || n || '}', 'UTF8'),
       (ARRAY['malformed_json', 'unknown_station', 'physically_impossible'])[1 + n %% 3],
       'seeded', 'aq-hoan-kiem', 'pm25'
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '20 minutes')
     WITH ORDINALITY AS g(t, n);

INSERT INTO quarantine_counts (window_start, publisher, reason, messages, readings, bytes, sampled)
SELECT date_trunc('minute', received_at), 'aq-hoan-kiem', reason, count(*), sum(readings),
       sum(payload_size), count(*)
FROM quarantine GROUP BY 1, 2, 3;

INSERT INTO service_heartbeats (service, instance, started_at, seen_at, stats) VALUES
  ('ingest', '0', now() - interval '1 hour', now(),
   '{"received_records": 100, "stored": 90, "duplicates": 4, "quarantined": 3,
     "pending_records": 3, "lag_s": 1.5, "strategy": "plain"}'),
  ('ingest', '1', now() - interval '1 hour', now() - interval '2 minutes',
   '{"received_records": 50, "stored": 50, "duplicates": 0, "quarantined": 0,
     "pending_records": 0, "lag_s": 0.7, "strategy": "plain"}'),
  ('processing', '0', now() - interval '1 hour', now(), '{}');
"""
_MATERIALISE_PLAIN: Final = """
SELECT hanoi_refresh_rollup('1m', interval '1 minute', %(mid)s);
SELECT hanoi_refresh_rollup('1h', interval '1 hour', %(mid)s);
"""
_MATERIALISE_TIMESCALE: Final = (
    "CALL refresh_continuous_aggregate('readings_1m', NULL, %(mid)s)",
    "CALL refresh_continuous_aggregate('readings_1h', NULL, %(mid)s)",
)


def seed(url: str, strategy: StrategyName = "plain") -> None:
    """Fill a freshly migrated database, its aggregates materialised up to the middle.

    Materialising the first half only leaves the rest to the live arm of the rollup views
    (plain) or to real-time aggregation (TimescaleDB), so queries cross the boundary.
    """
    # Client-side binding: the seed is one multi-statement script with parameters.
    with (
        psycopg.connect(url, cursor_factory=psycopg.ClientCursor) as conn,
        conn.cursor() as cur,
    ):
        for station, domain, name, district, kind, quantities in STATIONS:
            cur.execute(
                "INSERT INTO stations (station_id, domain, name, district, lat, lon, kind)"
                " VALUES (%s, %s, %s, %s, 21.03, 105.85, %s)",
                (station, domain, name, district, kind),
            )
            for quantity, unit in quantities:
                cur.execute(
                    "INSERT INTO sensors (station_id, quantity, unit, interval_s)"
                    " VALUES (%s, %s, %s, 300)",
                    (station, quantity, unit),
                )
        start = SEED_FROM - timedelta(hours=26)
        cur.execute(
            _SQL,
            {
                "day0": start.date(),
                "day1": SEED_TO.date(),
                "start": start,
                "end": SEED_TO,
                "early": SEED_FROM + timedelta(minutes=30),
                "mid": SEED_FROM + (SEED_TO - SEED_FROM) / 2,
            },
        )
    mid = {"mid": SEED_FROM + (SEED_TO - SEED_FROM) / 2}
    if strategy == "plain":
        with psycopg.connect(url, cursor_factory=psycopg.ClientCursor) as conn:
            conn.execute(_MATERIALISE_PLAIN, mid)
        return
    with psycopg.connect(url, autocommit=True) as conn:  # refreshes refuse a transaction
        for statement in _MATERIALISE_TIMESCALE:
            conn.execute(statement, mid)
