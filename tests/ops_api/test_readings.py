"""History downsampling bounds, indices, and request validation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.ops_api import seed
from tests.ops_api.conftest import FLOOD, VIEWER, TestClient, bearer
from tests.ops_api.seed import SyncConn

pytestmark = pytest.mark.db


def _series(db: SyncConn, *, interval_s: float = 10.0, every_s: int = 10) -> datetime:
    """Two hours of readings (value = minute of the series); returns the series start."""
    sensors = seed.add_station(db, "aq-hoan-kiem", "air", {"pm25": ("ug/m3", interval_s)})
    start = seed.now().replace(microsecond=0) - timedelta(hours=2)
    points = [(start + timedelta(seconds=s), s / 60.0) for s in range(0, 7200, every_s)]
    seed.add_readings(db, sensors["pm25"], points)
    return start


def _history(api: TestClient, start: datetime, span: timedelta, **params: object) -> Any:
    query = {
        "sensor": "aq-hoan-kiem.pm25",
        "from": start.isoformat(),
        "to": (start + span).isoformat(),
        **params,
    }
    response = api.get(f"/api/history?{urlencode(query)}", headers=bearer(VIEWER))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("span", "max_points", "source", "bucket_s"),
    [
        (timedelta(hours=1), 500, "raw", None),
        (timedelta(hours=2), 500, "raw", 15),
        (timedelta(hours=2), 100, "1m", 120),
        (timedelta(days=10), 100, "1h", 3 * 3600),
    ],
)
def test_history_downsampling_bounds(
    api: TestClient,
    db: SyncConn,
    span: timedelta,
    max_points: int,
    source: str,
    bucket_s: int | None,
) -> None:
    start = _series(db)
    body = _history(api, start, span, max_points=max_points)
    assert (body["source"], body["bucket_s"], body["unit"]) == (source, bucket_s, "ug/m3")
    points = body["points"]
    assert 0 < len(points) <= max_points
    expected = min(span, timedelta(hours=2)).total_seconds() / 10
    assert sum(p["n"] for p in points) == expected  # nothing lost, nothing counted twice
    assert all(p["min"] <= p["avg"] <= p["max"] for p in points)
    times = [p["t"] for p in points]
    assert times == sorted(times)
    assert times[0].endswith("Z")


def test_history_buckets_when_a_sensor_reports_faster_than_registered(
    api: TestClient, db: SyncConn
) -> None:
    start = _series(db, interval_s=60.0, every_s=10)
    body = _history(api, start, timedelta(hours=1), max_points=100)
    assert body["source"] == "raw"
    assert body["bucket_s"] == 36
    assert len(body["points"]) <= 100
    assert sum(p["n"] for p in body["points"]) == 360


def test_history_validation(api: TestClient, db: SyncConn) -> None:
    start = _series(db)
    h = bearer(VIEWER)
    base = {"sensor": "aq-hoan-kiem.pm25"}
    assert api.get(f"/api/history?{urlencode(base)}", headers=h).status_code == 200
    # above the server's limit: reduced to it (and said so); above the documented maximum: 422
    capped = {**base, "max_points": 100_000}
    reply = api.get(f"/api/history?{urlencode(capped)}", headers=h)
    assert (reply.status_code, reply.json()["max_points"]) == (200, 5000)
    too_many = {**base, "max_points": 100_001}
    reply = api.get(f"/api/history?{urlencode(too_many)}", headers=h)
    assert (reply.status_code, reply.json()["code"]) == (422, "invalid_request")
    assert reply.json()["errors"][0]["loc"] == ["query", "max_points"]
    # an empty range is no error: it has no points
    backwards = {**base, "from": start.isoformat(), "to": (start - timedelta(1)).isoformat()}
    reply = api.get(f"/api/history?{urlencode(backwards)}", headers=h)
    assert (reply.status_code, reply.json()["points"]) == (200, [])
    # the ends of the calendar: clamped, never an overflow
    for edge in ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-12:00"):
        reply = api.get(f"/api/history?{urlencode({**base, 'to': edge})}", headers=h)
        assert reply.status_code == 200, edge
        reply = api.get(f"/api/history?{urlencode({**base, 'from': edge})}", headers=h)
        assert reply.status_code == 200, edge
    naive = {**base, "from": "2026-01-01T00:00:00"}
    assert api.get(f"/api/history?{urlencode(naive)}", headers=h).status_code == 422
    unknown = {"sensor": "aq-hoan-kiem.no2"}
    assert api.get(f"/api/history?{urlencode(unknown)}", headers=h).status_code == 404
    assert api.get(f"/api/history?{urlencode(base)}", headers=bearer(FLOOD)).status_code == 404


def test_indices(api: TestClient, db: SyncConn) -> None:
    seed.add_station(db, "aq-hoan-kiem", "air", {"pm25": ("ug/m3", 60.0)})
    seed.add_station(db, "aq-kim-lien", "air", {"pm25": ("ug/m3", 60.0)})
    t = seed.now() - timedelta(hours=1)
    seed.add_index(db, "aq-hoan-kiem", "VN_AQI", 80.0, "Trung bình", t)
    seed.add_index(db, "aq-hoan-kiem", "VN_AQI", 120.0, "Kém", t + timedelta(minutes=30))
    seed.add_index(db, "aq-kim-lien", "VN_AQI", 40.0, "Tốt", t)
    h = bearer(VIEWER)
    rows = api.get("/api/indices?station=aq-hoan-kiem&index=VN_AQI", headers=h).json()
    assert [(r["value"], r["level"]) for r in rows] == [(120.0, "Kém"), (80.0, "Trung bình")]
    assert len(api.get("/api/indices", headers=h).json()) == 3
    assert api.get("/api/indices", headers=bearer(FLOOD)).json() == []
