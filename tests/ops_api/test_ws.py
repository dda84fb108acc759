"""The WebSocket live feed on a real database: alerts (live, resume, scope, overflow),
readings, status, authentication and limits."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from starlette.websockets import WebSocketDisconnect

from ops_api.app import create_app
from ops_api.live.broadcaster import LISTENER_NAME
from ops_api.live.client import LiveClient
from tests.ops_api import seed
from tests.ops_api.conftest import (
    FLOOD,
    OPERATOR,
    VIEWER,
    TestClient,
    WebSocketTestSession,
    bearer,
    make_settings,
    receive_until,
)
from tests.ops_api.seed import SyncConn

pytestmark = pytest.mark.db


def _stations(db: SyncConn) -> dict[str, int]:
    flood = seed.add_station(db, "fd-thai-ha", "flood", {"water_depth": ("cm", 30.0)})
    air = seed.add_station(db, "aq-hoan-kiem", "air", {"pm25": ("ug/m3", 60.0)})
    return {"flood": flood["water_depth"], "air": air["pm25"]}


def _closed_with(ws: WebSocketTestSession) -> int:
    """Read until the server closes; its close code."""
    while True:
        try:
            ws.receive_json()
        except WebSocketDisconnect as closed:
            return closed.code


def _event_id(message: dict[str, Any]) -> int:
    return int(message["event"]["event_id"])


def test_live_alert_event_arrives(api: TestClient, db: SyncConn) -> None:
    _stations(db)
    with api.websocket_connect("/ws", headers=bearer(VIEWER)) as ws:
        hello = receive_until(ws, "hello")
        assert hello["principal"] == {"name": "viewer-1", "role": "viewer", "scope_domains": None}
        ws.send_json({"type": "subscribe", "channel": "alerts", "min_severity": "moderate"})
        receive_until(ws, "subscribed")
        seed.add_alert(db, station_id="fd-thai-ha", domain="flood", severity="minor")
        alert_id, event_id = seed.add_alert(db, station_id="fd-thai-ha", domain="flood")
        message = receive_until(ws, "alert_event")
        assert message["replay"] is False
        assert _event_id(message) == event_id
        alert = message["alert"]
        assert (alert["alert_id"], alert["severity"], alert["state"]) == (
            alert_id,
            "moderate",
            "raised",
        )
        # an operator's acknowledgement over REST reaches the live feed too
        api.post(f"/api/alerts/{alert_id}/acknowledge", headers=bearer(OPERATOR))
        acked = receive_until(ws, "alert_event")
        assert acked["event"]["action"] == "acknowledged"
        assert acked["alert"]["state"] == "acknowledged"


def test_resume_from_replays_missed_events_then_live(api: TestClient, db: SyncConn) -> None:
    _stations(db)
    _, first = seed.add_alert(db, station_id="fd-thai-ha", domain="flood")
    missed = [seed.add_alert(db, station_id="fd-thai-ha", domain="flood")[1] for _ in range(3)]
    with api.websocket_connect("/ws") as ws:
        ws.send_json({"type": "auth", "token": VIEWER})
        receive_until(ws, "hello")
        ws.send_json({"type": "subscribe", "channel": "alerts", "resume_from": first})
        receive_until(ws, "subscribed")
        replayed = [_event_id(receive_until(ws, "alert_event")) for _ in missed]
        assert replayed == missed
        done = receive_until(ws, "replay_done")
        assert done["last_event_id"] == missed[-1]
        _, live = seed.add_alert(db, station_id="fd-thai-ha", domain="flood")
        message = receive_until(ws, "alert_event")
        assert (message["replay"], _event_id(message)) == (False, live)


def test_scoped_subscriber_gets_flood_alerts_only(api: TestClient, db: SyncConn) -> None:
    _stations(db)
    with api.websocket_connect("/ws", headers=bearer(FLOOD)) as ws:
        receive_until(ws, "hello")
        ws.send_json({"type": "subscribe", "channel": "alerts", "domains": ["air", "flood"]})
        subscribed = receive_until(ws, "subscribed")
        assert subscribed["domains"] == ["flood"]
        seed.add_alert(db, station_id="aq-hoan-kiem", domain="air", severity="extreme")
        _, flood_event = seed.add_alert(db, station_id="fd-thai-ha", domain="flood")
        assert _event_id(receive_until(ws, "alert_event")) == flood_event


def test_overflow_tells_the_client_to_resync(
    db_url: str, db: SyncConn, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stations(db)
    alert_id, _ = seed.add_alert(db, station_id="fd-thai-ha", domain="flood")
    # A stalled socket, deterministically: the sender does not get to the alert queue until
    # it has overflowed (TestClient sockets never apply backpressure themselves).
    take_alerts = LiveClient.take_alerts

    def stalled(client: LiveClient) -> list[str]:
        sub = client.alerts
        if sub is not None and not sub.overflowed and not sub.replaying and stall:
            return []
        return take_alerts(client)

    stall = True
    monkeypatch.setattr(LiveClient, "take_alerts", stalled)
    settings = make_settings(db_url, ws_alert_queue_size=3)
    with (
        TestClient(create_app(settings)) as api,
        api.websocket_connect("/ws", headers=bearer(VIEWER)) as ws,
    ):
        receive_until(ws, "hello")
        ws.send_json({"type": "subscribe", "channel": "alerts"})
        receive_until(ws, "subscribed")
        burst = [seed.add_event(db, alert_id, "updated", "processing") for _ in range(10)]
        delivered = [_event_id(receive_until(ws, "alert_event")) for _ in range(3)]
        assert delivered == burst[:3]
        resync = receive_until(ws, "resync")
        assert resync["resume_from"] == burst[2]
        stall = False
        ws.send_json({"type": "subscribe", "channel": "alerts", "resume_from": burst[2]})
        rest = [_event_id(receive_until(ws, "alert_event")) for _ in burst[3:]]
        assert rest == burst[3:]
        receive_until(ws, "replay_done")
        _, live = seed.add_alert(db, station_id="fd-thai-ha", domain="flood")
        assert _event_id(receive_until(ws, "alert_event")) == live
        metrics = api.get("/metrics", headers=bearer(VIEWER)).text
        assert "hanoi_api_ws_alert_resyncs_total 1" in metrics


def test_listener_reconnects_and_catches_up(api: TestClient, db: SyncConn) -> None:
    _stations(db)
    with api.websocket_connect("/ws", headers=bearer(VIEWER)) as ws:
        receive_until(ws, "hello")
        ws.send_json({"type": "subscribe", "channel": "alerts"})
        receive_until(ws, "subscribed")
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (LISTENER_NAME,),
        )
        _, during = seed.add_alert(db, station_id="fd-thai-ha", domain="flood")
        _, after = seed.add_alert(db, station_id="fd-thai-ha", domain="flood")
        got = [_event_id(receive_until(ws, "alert_event")) for _ in range(2)]
        assert got == [during, after]
    health = api.get("/health").json()
    assert health["live"]["listen_reconnects"] >= 1


def test_readings_snapshot_then_changes(api: TestClient, db: SyncConn) -> None:
    sensors = _stations(db)
    seed.set_latest(db, sensors["air"], 41.5)
    seed.set_latest(db, sensors["flood"], 3.0)
    with api.websocket_connect("/ws", headers=bearer(VIEWER)) as ws:
        receive_until(ws, "hello")
        ws.send_json(
            {"type": "subscribe", "channel": "readings", "domains": ["air"], "max_rate_hz": 20}
        )
        assert receive_until(ws, "subscribed")["max_rate_hz"] == 1.0  # capped by the server
        snapshot = receive_until(ws, "readings")
        assert [(r["sensor"], r["value"]) for r in snapshot["readings"]] == [
            ("aq-hoan-kiem.pm25", 41.5)
        ]
        seed.set_latest(db, sensors["air"], 55.0, seed.now() + timedelta(seconds=1))
        change = receive_until(ws, "readings", timeout_s=5)
        assert [r["value"] for r in change["readings"]] == [55.0]


def test_status_channel(api: TestClient, db: SyncConn) -> None:
    sensors = _stations(db)
    seed.set_latest(db, sensors["flood"], 3.0)
    seed.add_status(db, "aq-hoan-kiem", "offline", seed.now(), "last will")
    with api.websocket_connect("/ws", headers=bearer(VIEWER)) as ws:
        receive_until(ws, "hello")
        ws.send_json({"type": "subscribe", "channel": "status"})
        message = receive_until(ws, "status")
        states = {s["station_id"]: s["state"] for s in message["stations"]}
        assert states == {"fd-thai-ha": "online", "aq-hoan-kiem": "offline"}
        ws.send_json({"type": "ping", "id": 7})
        assert receive_until(ws, "pong")["id"] == 7
        ws.send_json({"type": "subscribe", "channel": "nope"})
        assert receive_until(ws, "error")["code"] == "bad_message"


def test_bad_token_is_refused(api: TestClient) -> None:
    with api.websocket_connect("/ws") as ws:
        ws.send_json({"type": "auth", "token": "wrong"})
        assert receive_until(ws, "error")["code"] == "unauthenticated"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401


def test_max_clients(db_url: str) -> None:
    with TestClient(create_app(make_settings(db_url, ws_max_clients=1))) as api:
        with api.websocket_connect("/ws", headers=bearer(VIEWER)) as first:
            receive_until(first, "hello")
            with api.websocket_connect("/ws", headers=bearer(VIEWER)) as second:
                assert receive_until(second, "error")["code"] == "too_many_clients"
                with pytest.raises(WebSocketDisconnect) as closed:
                    second.receive_json()
                assert closed.value.code == 1013
        assert "hanoi_api_ws_refused_total 1" in api.get("/metrics", headers=bearer(VIEWER)).text
        deadline = time.monotonic() + 5
        while api.get("/health").json()["live"]["ws_clients"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert api.get("/health").json()["live"]["ws_clients"] == 0  # slots are given back


def test_dev_mode_allows_anonymous_viewers(db_url: str) -> None:
    settings = make_settings(db_url, env="dev", tokens={})
    with TestClient(create_app(settings)) as api, api.websocket_connect("/ws") as ws:
        assert api.get("/api/stations").status_code == 200
        ws.send_json({"type": "subscribe", "channel": "alerts"})
        assert receive_until(ws, "hello")["principal"]["name"] == "anonymous"
        assert receive_until(ws, "subscribed")["channel"] == "alerts"
        with psycopg.connect(db_url, autocommit=True) as db:
            ops = api.post("/api/alerts/1/acknowledge", headers=bearer("dev-operator"))
            assert ops.status_code == 404  # the dev operator token works; there is no alert
            assert db.execute("SELECT count(*) FROM alerts").fetchone() == (0,)


def test_a_token_in_the_url_is_refused(api: TestClient) -> None:
    with api.websocket_connect(f"/ws?token={VIEWER}") as ws:
        assert receive_until(ws, "error")["code"] == "token_in_url"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4400


def test_one_token_cannot_take_every_slot(db_url: str) -> None:
    settings = make_settings(db_url, ws_max_clients=10, ws_max_clients_per_token=2)
    with TestClient(create_app(settings)) as api:
        with (
            api.websocket_connect("/ws", headers=bearer(VIEWER)) as first,
            api.websocket_connect("/ws", headers=bearer(VIEWER)) as second,
        ):
            receive_until(first, "hello")
            receive_until(second, "hello")
            with api.websocket_connect("/ws", headers=bearer(VIEWER)) as third:
                assert receive_until(third, "error")["code"] == "too_many_connections"
                with pytest.raises(WebSocketDisconnect) as closed:
                    third.receive_json()
                assert closed.value.code == 4429
            with api.websocket_connect("/ws", headers=bearer(OPERATOR)) as other:
                assert receive_until(other, "hello")["principal"]["role"] == "operator"
        metrics = api.get("/metrics", headers=bearer(VIEWER)).text
        assert "hanoi_api_ws_refused_per_token_total 1" in metrics


def test_a_client_that_does_not_read_is_dropped_within_seconds(db_url: str) -> None:
    settings = make_settings(db_url, ws_heartbeat_s=0.2, ws_pong_timeout_s=0.6)
    with TestClient(create_app(settings)) as api:
        with api.websocket_connect("/ws", headers=bearer(VIEWER)) as ws:
            receive_until(ws, "hello")
            started = time.monotonic()
            time.sleep(1.5)  # reads nothing, answers no ping
            assert _closed_with(ws) == 4408
            assert time.monotonic() - started < 5
        deadline = time.monotonic() + 5
        while api.get("/health").json()["live"]["ws_clients"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert api.get("/health").json()["live"]["ws_clients"] == 0  # its slot is free
        metrics = api.get("/metrics", headers=bearer(VIEWER)).text
        assert 'hanoi_api_ws_dropped_total{reason="not_reading"} 1' in metrics


def test_a_client_that_answers_pings_stays(db_url: str) -> None:
    settings = make_settings(db_url, ws_heartbeat_s=0.1, ws_pong_timeout_s=0.5)
    with (
        TestClient(create_app(settings)) as api,
        api.websocket_connect("/ws", headers=bearer(VIEWER)) as ws,
    ):
        receive_until(ws, "hello")
        deadline = time.monotonic() + 2.0
        answered = 0
        while time.monotonic() < deadline:
            ping = receive_until(ws, "ping")
            ws.send_json({"type": "pong", "id": ping["id"]})
            answered += 1
        ws.send_json({"type": "ping", "id": "still-there"})
        assert receive_until(ws, "pong")["id"] == "still-there"
        assert answered >= 5


def test_frames_and_message_rates_are_limited(db_url: str) -> None:
    settings = make_settings(db_url, ws_max_message_bytes=16384, ws_messages_per_s=5.0)
    with TestClient(create_app(settings)) as api:
        with api.websocket_connect("/ws", headers=bearer(VIEWER)) as ws:
            receive_until(ws, "hello")
            ws.send_text('{"type": "ping", "id": "' + "x" * 20_000 + '"}')
            assert _closed_with(ws) == 1009
        with api.websocket_connect("/ws", headers=bearer(VIEWER)) as ws:
            receive_until(ws, "hello")
            for i in range(40):
                ws.send_json({"type": "ping", "id": i})
            assert receive_until(ws, "error")["code"] == "rate_limited"
        with api.websocket_connect("/ws", headers=bearer(VIEWER)) as ws:
            receive_until(ws, "hello")
            too_many = [f"st-{i:04d}" for i in range(1001)]
            ws.send_json({"type": "subscribe", "channel": "status", "stations": too_many})
            assert receive_until(ws, "error")["code"] == "bad_message"
            ws.send_json({"type": "subscribe", "channel": "status", "stations": ["BAD ID"]})
            assert receive_until(ws, "error")["code"] == "bad_message"


def test_a_connection_that_never_authenticates_frees_its_slot(db_url: str) -> None:
    settings = make_settings(db_url, ws_auth_timeout_s=0.3, ws_max_clients=1)
    with TestClient(create_app(settings)) as api:
        with api.websocket_connect("/ws") as silent:
            assert _closed_with(silent) == 4401
        with api.websocket_connect("/ws", headers=bearer(VIEWER)) as ws:
            assert receive_until(ws, "hello")["principal"]["name"] == "viewer-1"
