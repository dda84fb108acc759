"""Rows for the ops API tests, written with plain SQL on a synchronous connection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

SyncConn = psycopg.Connection[tuple[object, ...]]


def now() -> datetime:
    return datetime.now(UTC)


def add_station(
    conn: SyncConn,
    station_id: str,
    domain: str,
    sensors: Mapping[str, tuple[str, float]],
    *,
    lat: float = 21.03,
    lon: float = 105.85,
    district: str = "Hoàn Kiếm",
    kind: str = "test",
    name: str | None = None,
) -> dict[str, int]:
    """A station and its sensors (quantity -> (unit, interval_s)); returns sensor ids."""
    conn.execute(
        "INSERT INTO stations (station_id, domain, name, district, lat, lon, kind) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (station_id, domain, name or station_id, district, lat, lon, kind),
    )
    ids: dict[str, int] = {}
    for quantity, (unit, interval_s) in sensors.items():
        cur = conn.execute(
            "INSERT INTO sensors (station_id, quantity, unit, interval_s) VALUES (%s, %s, %s, %s) "
            "RETURNING sensor_id",
            (station_id, quantity, unit, interval_s),
        )
        row = cur.fetchone()
        assert row is not None
        ids[quantity] = int(str(row[0]))
    return ids


def add_readings(conn: SyncConn, sensor_id: int, points: Iterable[tuple[datetime, float]]) -> None:
    """Raw readings (partitions made as needed)."""
    rows = list(points)
    if not rows:
        return
    days = [t.astimezone(UTC).date() for t, _ in rows]
    conn.execute("SELECT hanoi_ensure_partitions(%s, %s)", (min(days), max(days)))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (time, sensor_id, value, received_at) VALUES (%s, %s, %s, %s)",
            [(t, sensor_id, v, t) for t, v in rows],
        )


def set_latest(
    conn: SyncConn,
    sensor_id: int,
    value: float,
    at: datetime | None = None,
    received_at: datetime | None = None,
) -> None:
    at = at or now()
    conn.execute(
        "INSERT INTO latest (sensor_id, time, value, quality, received_at) "
        "VALUES (%s, %s, %s, 0, %s) ON CONFLICT (sensor_id) DO UPDATE "
        "SET time = EXCLUDED.time, value = EXCLUDED.value, received_at = EXCLUDED.received_at",
        (sensor_id, at, value, received_at or at),
    )


def add_status(
    conn: SyncConn, station_id: str, state: str, at: datetime, reason: str | None = None
) -> None:
    conn.execute(
        "INSERT INTO sensor_status (station_id, at, state, reason) VALUES (%s, %s, %s, %s)",
        (station_id, at, state, reason),
    )


def add_alert(
    conn: SyncConn,
    *,
    station_id: str | None,
    domain: str | None,
    severity: str = "moderate",
    state: str = "raised",
    quantity: str | None = None,
    dedup_key: str | None = None,
    value: float | None = 25.0,
    rule: str = "test_rule",
    category: str = "event",
    details: Mapping[str, object] | None = None,
) -> tuple[int, int]:
    """An alert row plus its ``raised`` event; returns (alert_id, event_id)."""
    with conn.transaction():
        cur = conn.execute(
            "INSERT INTO alerts (dedup_key, rule, category, severity, state, station_id, "
            "quantity, domain, district, title_vi, title_en, message_vi, message_en, value, "
            "threshold, observed_at, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
            "'Đống Đa', 'Ngập sâu', 'Deep flooding', 'Ngập 25 cm', 'Flooded 25 cm', %s, 20, "
            "now(), %s) RETURNING alert_id",
            (
                dedup_key or f"test:{station_id}:{now().timestamp()}",
                rule,
                category,
                severity,
                state,
                station_id,
                quantity,
                domain,
                value,
                Jsonb(dict(details or {})),
            ),
        )
        row = cur.fetchone()
        assert row is not None
        alert_id = int(str(row[0]))
        event_id = add_event(conn, alert_id, "raised", "processing", severity=severity)
    return alert_id, event_id


def add_event(
    conn: SyncConn,
    alert_id: int,
    action: str,
    actor: str,
    *,
    severity: str | None = None,
    note: str | None = None,
) -> int:
    cur = conn.execute(
        "INSERT INTO alert_events (alert_id, action, actor, severity, note) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING event_id",
        (alert_id, action, actor, severity, note),
    )
    row = cur.fetchone()
    assert row is not None
    return int(str(row[0]))


def add_heartbeat(
    conn: SyncConn, service: str, instance: str, age: timedelta, stats: Mapping[str, object]
) -> None:
    seen = now() - age
    conn.execute(
        "INSERT INTO service_heartbeats (service, instance, started_at, seen_at, stats) "
        "VALUES (%s, %s, %s, %s, %s)",
        (service, instance, seen - timedelta(hours=1), seen, Jsonb(dict(stats))),
    )


def add_quarantine(conn: SyncConn, payload: bytes, reason: str, detail: str = "bad") -> None:
    conn.execute(
        "INSERT INTO quarantine (received_at, topic, payload, reason, detail) "
        "VALUES (now(), 'hanoi/v1/air/aq-x/telemetry', %s, %s, %s)",
        (payload, reason, detail),
    )


def add_index(
    conn: SyncConn, station_id: str, index: str, value: float, level: str, at: datetime
) -> None:
    conn.execute(
        "INSERT INTO indices (time, station_id, index, value, level, dominant) "
        "VALUES (%s, %s, %s, %s, %s, 'pm25')",
        (at, station_id, index, value, level),
    )
