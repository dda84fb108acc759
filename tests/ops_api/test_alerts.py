"""The alert inbox over REST: filters, detail, operator actions and their conflicts, roles."""

from __future__ import annotations

import pytest

from tests.ops_api import seed
from tests.ops_api.conftest import ADMIN, FLOOD, OPERATOR, VIEWER, TestClient, bearer
from tests.ops_api.seed import SyncConn

pytestmark = pytest.mark.db


def _alerts(db: SyncConn) -> dict[str, int]:
    seed.add_station(db, "fd-thai-ha", "flood", {"water_depth": ("cm", 30.0)})
    seed.add_station(db, "aq-hoan-kiem", "air", {"pm25": ("ug/m3", 60.0)})
    flood, _ = seed.add_alert(db, station_id="fd-thai-ha", domain="flood", severity="severe")
    air, _ = seed.add_alert(db, station_id="aq-hoan-kiem", domain="air", severity="minor")
    old, _ = seed.add_alert(
        db, station_id="aq-hoan-kiem", domain="air", severity="extreme", state="cleared"
    )
    return {"flood": flood, "air": air, "old": old}


def _ids(response: dict[str, object]) -> set[int]:
    alerts = response["alerts"]
    assert isinstance(alerts, list)
    return {int(a["alert_id"]) for a in alerts}


def test_list_filters(api: TestClient, db: SyncConn) -> None:
    ids = _alerts(db)
    h = bearer(VIEWER)
    everything = api.get("/api/alerts", headers=h).json()
    assert _ids(everything) == set(ids.values())
    assert everything["last_event_id"] == 3
    assert _ids(api.get("/api/alerts?state=open", headers=h).json()) == {ids["flood"], ids["air"]}
    assert _ids(api.get("/api/alerts?state=cleared", headers=h).json()) == {ids["old"]}
    high = api.get("/api/alerts?min_severity=severe", headers=h).json()
    assert _ids(high) == {ids["flood"], ids["old"]}
    assert _ids(api.get("/api/alerts?domain=air&state=open", headers=h).json()) == {ids["air"]}
    assert _ids(api.get("/api/alerts?station=fd-thai-ha", headers=h).json()) == {ids["flood"]}
    assert _ids(api.get("/api/alerts?since_event=2", headers=h).json()) == {ids["old"]}
    assert len(api.get("/api/alerts?limit=1", headers=h).json()["alerts"]) == 1
    alert = everything["alerts"][-1]
    assert alert["title_vi"] == "Ngập sâu"
    assert alert["raised_at"].endswith("Z")
    assert alert["raised_at_local"].endswith("+07:00")


def test_scoped_subscriber_sees_flood_only(api: TestClient, db: SyncConn) -> None:
    ids = _alerts(db)
    seed.add_alert(db, station_id=None, domain=None, severity="info")
    listed = api.get("/api/alerts", headers=bearer(FLOOD)).json()
    assert _ids(listed) == {ids["flood"]}
    # asking for air explicitly does not widen the scope
    assert _ids(api.get("/api/alerts?domain=air", headers=bearer(FLOOD)).json()) == set()
    assert api.get(f"/api/alerts/{ids['air']}", headers=bearer(FLOOD)).status_code == 404
    assert api.get(f"/api/alerts/{ids['flood']}", headers=bearer(FLOOD)).status_code == 200


def test_acknowledge_then_clear_with_audit_trail(api: TestClient, db: SyncConn) -> None:
    ids = _alerts(db)
    url = f"/api/alerts/{ids['flood']}"
    op = bearer(OPERATOR)
    acked = api.post(f"{url}/acknowledge", headers=op, json={"note": "đang xử lý"})
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert body["alert"]["state"] == "acknowledged"
    assert body["alert"]["acknowledged_by"] == "op-1"
    assert body["event"]["action"] == "acknowledged"
    assert body["event"]["note"] == "đang xử lý"
    again = api.post(f"{url}/acknowledge", headers=op)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
    assert "already acknowledged" in again.json()["message_en"]
    cleared = api.post(f"{url}/clear", headers=op)
    assert cleared.status_code == 200
    assert cleared.json()["alert"]["cleared_by"] == "op-1"
    assert api.post(f"{url}/clear", headers=op).status_code == 409
    assert api.post(f"{url}/acknowledge", headers=op).status_code == 409
    note = api.post(f"{url}/comment", headers=op, json={"note": "nước đã rút"})
    assert note.status_code == 200
    assert note.json()["alert"]["state"] == "cleared"
    detail = api.get(url, headers=bearer(VIEWER)).json()
    actions = [(e["action"], e["actor"]) for e in detail["events"]]
    assert actions == [
        ("raised", "processing"),
        ("acknowledged", "op-1"),
        ("cleared", "op-1"),
        ("commented", "op-1"),
    ]
    assert detail["last_event_id"] == detail["events"][-1]["event_id"]
    row = db.execute(
        "SELECT state, acknowledged_by, cleared_by FROM alerts WHERE alert_id = %s",
        (ids["flood"],),
    ).fetchone()
    assert row == ("cleared", "op-1", "op-1")


def test_clear_straight_from_raised_and_errors(api: TestClient, db: SyncConn) -> None:
    ids = _alerts(db)
    op = bearer(OPERATOR)
    assert api.post(f"/api/alerts/{ids['air']}/clear", headers=bearer(ADMIN)).status_code == 200
    assert api.post("/api/alerts/999/acknowledge", headers=op).status_code == 404
    empty = api.post(f"/api/alerts/{ids['flood']}/comment", headers=op, json={"note": ""})
    assert empty.status_code == 422
    nobody = api.post(f"/api/alerts/{ids['flood']}/comment", json={"note": "x"})
    assert nobody.status_code == 401


def test_roles(api: TestClient, db: SyncConn) -> None:
    ids = _alerts(db)
    for token in (VIEWER, FLOOD):
        denied = api.post(f"/api/alerts/{ids['flood']}/acknowledge", headers=bearer(token))
        assert denied.status_code == 403
        assert denied.json()["code"] == "forbidden"
    state = db.execute("SELECT state FROM alerts WHERE alert_id = %s", (ids["flood"],)).fetchone()
    assert state == ("raised",)
