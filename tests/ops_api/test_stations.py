"""Stations (GeoJSON), station detail, latest values and the console page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.ops_api import seed
from tests.ops_api.conftest import FLOOD, VIEWER, TestClient, bearer
from tests.ops_api.seed import SyncConn

pytestmark = pytest.mark.db


def _seed(db: SyncConn) -> dict[str, dict[str, int]]:
    t = seed.now()
    air = seed.add_station(
        db, "aq-hoan-kiem", "air", {"pm25": ("ug/m3", 60.0)}, lat=21.0289, lon=105.8522
    )
    flood = seed.add_station(
        db, "fd-thai-ha", "flood", {"water_depth": ("cm", 30.0)}, lat=21.0118, lon=105.8201
    )
    quiet = seed.add_station(db, "fd-quiet", "flood", {"water_depth": ("cm", 30.0)})
    gone = seed.add_station(db, "aq-gone", "air", {"pm25": ("ug/m3", 60.0)})
    seed.set_latest(db, air["pm25"], 41.5, t - timedelta(seconds=20))
    seed.set_latest(db, flood["water_depth"], 27.0, t - timedelta(seconds=10))
    seed.set_latest(db, quiet["water_depth"], 0.0, t - timedelta(hours=2))
    seed.add_status(db, "aq-gone", "offline", t - timedelta(minutes=5), "last will")
    seed.set_latest(db, gone["pm25"], 12.0, t - timedelta(minutes=30))
    seed.add_index(db, "aq-hoan-kiem", "VN_AQI", 112.0, "Kém", t - timedelta(minutes=5))
    seed.add_alert(db, station_id="fd-thai-ha", domain="flood", severity="severe")
    return {"aq-hoan-kiem": air, "fd-thai-ha": flood}


def test_stations_geojson(api: TestClient, db: SyncConn) -> None:
    _seed(db)
    body = api.get("/api/stations", headers=bearer(VIEWER)).json()
    assert body["type"] == "FeatureCollection"
    features = {f["id"]: f for f in body["features"]}
    assert set(features) == {"aq-hoan-kiem", "fd-thai-ha", "fd-quiet", "aq-gone"}
    hk = features["aq-hoan-kiem"]
    assert hk["type"] == "Feature"
    assert hk["geometry"] == {"type": "Point", "coordinates": [105.8522, 21.0289]}
    props = hk["properties"]
    assert (props["domain"], props["district"], props["kind"]) == ("air", "Hoàn Kiếm", "test")
    assert props["state"] == "online"
    assert props["latest"][0]["sensor"] == "aq-hoan-kiem.pm25"
    assert props["latest"][0]["value"] == 41.5
    assert props["latest"][0]["label_vi"] == "Bụi PM2.5"
    assert props["latest"][0]["time"].endswith("Z")
    assert props["indices"][0]["index"] == "VN_AQI"
    assert props["indices"][0]["level"] == "Kém"
    th = features["fd-thai-ha"]["properties"]
    assert (th["open_alerts"], th["max_open_severity"]) == (1, "severe")
    assert features["fd-quiet"]["properties"]["state"] == "stale"
    assert features["aq-gone"]["properties"]["state"] == "offline"
    assert features["aq-gone"]["properties"]["state_reason"] == "last will"


def test_stations_filters_and_scope(api: TestClient, db: SyncConn) -> None:
    _seed(db)
    air = api.get("/api/stations?domain=air", headers=bearer(VIEWER)).json()
    assert {f["id"] for f in air["features"]} == {"aq-hoan-kiem", "aq-gone"}
    scoped = api.get("/api/stations", headers=bearer(FLOOD)).json()
    assert {f["properties"]["domain"] for f in scoped["features"]} == {"flood"}
    assert api.get("/api/stations/aq-hoan-kiem", headers=bearer(FLOOD)).status_code == 404


def test_station_detail_and_latest(api: TestClient, db: SyncConn) -> None:
    _seed(db)
    detail = api.get("/api/stations/aq-gone", headers=bearer(VIEWER)).json()
    props = detail["properties"]
    assert props["sensors"][0]["quantity"] == "pm25"
    assert props["status_history"][0]["state"] == "offline"
    missing = api.get("/api/stations/no-such", headers=bearer(VIEWER))
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    latest = api.get("/api/latest?domain=flood&station=fd-thai-ha", headers=bearer(VIEWER)).json()
    assert [(r["sensor"], r["value"], r["unit"]) for r in latest] == [
        ("fd-thai-ha.water_depth", 27.0, "cm")
    ]


def test_tokens_are_required_outside_dev(api: TestClient) -> None:
    response = api.get("/api/stations")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert api.get("/api/stations", headers=bearer("nope")).status_code == 401


def test_console_and_openapi(api: TestClient) -> None:
    page = api.get("/")
    assert page.status_code == 200
    assert "Cảnh báo" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert api.get("/static/app.js").status_code == 200
    schema = api.get("/openapi.json").json()
    assert {"/api/stations", "/api/history", "/api/alerts/{alert_id}/acknowledge"} <= set(
        schema["paths"]
    )
