"""Pure parts: per-client queues (coalescing, overflow), history plans, liveness, metrics."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from contract import Domain, StaleRule, StationStateName
from ops_api.auth import Principal, Role
from ops_api.history import plan_history
from ops_api.live.client import (
    AlertFilter,
    LiveAlert,
    LiveClient,
    LiveReading,
    LiveStatus,
    ScopeFilter,
)
from ops_api.metrics import metric_name, render, service_families

T0 = datetime(2026, 9, 30, 6, 0, tzinfo=UTC)


def _client(queue: int = 3) -> LiveClient:
    return LiveClient(1, Principal("t", Role.VIEWER), alert_queue_size=queue, readings_rate_hz=2.0)


def _alert(event_id: int, rank: int = 2, domain: str = "flood") -> LiveAlert:
    return LiveAlert(event_id, rank, domain, "fd-x", json.dumps({"id": event_id}))


def _reading(sensor_id: int, value: float, domain: str = "air") -> LiveReading:
    return LiveReading(sensor_id, f"st-{sensor_id}", domain, "pm25", "ug/m3", value, 0, T0)


def test_alert_overflow_delivers_what_was_queued_then_resync() -> None:
    client = _client(queue=3)
    client.subscribe_alerts(AlertFilter(), resume_from=None, live_floor=10)
    for event_id in range(11, 21):
        client.offer_alert(_alert(event_id))
    texts = client.take_alerts()
    assert [json.loads(t).get("id") for t in texts[:3]] == [11, 12, 13]
    resync = json.loads(texts[3])
    assert resync == {
        "type": "resync",
        "channel": "alerts",
        "resume_from": 13,
        "reason": "alert queue overflow",
    }
    assert client.alerts is None  # the client must subscribe again
    client.offer_alert(_alert(21))
    assert client.take_alerts() == []


def test_alert_filters_and_replay_dedup() -> None:
    client = _client(queue=10)
    scope = ScopeFilter(domains=frozenset({"flood"}))
    client.subscribe_alerts(AlertFilter(min_rank=2, scope=scope), resume_from=5, live_floor=8)
    assert client.take_alerts() == []  # replaying: live events wait
    client.offer_alert(_alert(4))  # at or below resume_from: the client has it
    client.offer_alert(_alert(9))
    client.offer_alert(_alert(10, rank=1))
    client.offer_alert(_alert(11, domain="air"))
    client.note_replayed([6, 9], scanned_to=9)
    assert client.alerts is not None
    client.alerts.replaying = False
    assert client.take_alerts() == []  # 9 was sent by the replay, the others do not match
    assert client.alerts.cursor == 9


def test_overflow_during_replay_rereads_instead_of_resync() -> None:
    client = _client(queue=2)
    client.subscribe_alerts(AlertFilter(), resume_from=0, live_floor=5)
    for event_id in range(6, 10):
        client.offer_alert(_alert(event_id))
    sub = client.alerts
    assert sub is not None
    assert (sub.overflowed, sub.reread) == (False, True)
    assert sub.finish_page(short=True) is False  # one more page: it reads 6..9 again
    client.note_replayed([6, 7, 8, 9], scanned_to=9)
    assert sub.finish_page(short=True) is True
    assert client.take_alerts() == []  # 9, queued after the drop, was replayed: no resync
    assert (client.alerts, sub.cursor) == (sub, 9)


def test_events_replayed_then_heard_live_take_no_room_in_the_queue() -> None:
    client = _client(queue=2)
    client.subscribe_alerts(AlertFilter(), resume_from=0, live_floor=5)
    client.note_replayed([6, 7, 8], scanned_to=8)
    sub = client.alerts
    assert sub is not None
    assert sub.finish_page(short=True) is True
    for event_id in (6, 7, 8, 9):  # the burst's notifications arrive late, then a new event
        client.offer_alert(_alert(event_id))
    assert sub.overflowed is False
    assert [json.loads(t).get("id") for t in client.take_alerts()] == [9]


def test_readings_coalesce_to_the_newest_value_per_sensor() -> None:
    client = _client()
    client.readings = ScopeFilter(domains=frozenset({"air"}))
    for value in (1.0, 2.0, 3.0):
        client.offer_readings([_reading(1, value), _reading(2, value * 10, domain="water")])
    batch = client.take_readings(now=100.0)
    assert batch is not None
    text, coalesced = batch
    message = json.loads(text)
    assert coalesced == 2
    assert [(r["sensor"], r["value"]) for r in message["readings"]] == [("st-1.pm25", 3.0)]
    client.offer_readings([_reading(1, 4.0)])
    assert client.take_readings(now=100.1) is None  # 2 Hz: not before 100.5
    assert math.isclose(client.readings_delay(100.1) or 0.0, 0.4)
    assert client.take_readings(now=100.5) is not None


def test_status_keeps_the_newest_state_per_station() -> None:
    client = _client()
    client.status = ScopeFilter()
    states: tuple[StationStateName, ...] = ("online", "stale")
    for state in states:
        client.offer_status([LiveStatus("fd-x", "flood", state, "online", T0, None, T0)])
    message = json.loads(client.take_status() or "{}")
    assert [s["state"] for s in message["stations"]] == ["stale"]
    assert client.take_status() is None


def test_scope_narrows_requests() -> None:
    flood_only = Principal("so-tnmt", Role.VIEWER, frozenset({Domain.FLOOD}))
    assert flood_only.visible_domains([Domain.AIR]) == frozenset()
    assert flood_only.visible_domains(None) == frozenset({Domain.FLOOD})
    assert ScopeFilter(domains=frozenset()).matches("flood", "x") is False
    assert ScopeFilter().matches(None, None) is True


@given(
    span_s=st.floats(min_value=1.0, max_value=5 * 365 * 86400.0),
    max_points=st.integers(min_value=2, max_value=5000),
    interval_s=st.floats(min_value=0.1, max_value=86400.0),
)
def test_history_plan_never_exceeds_max_points(
    span_s: float, max_points: int, interval_s: float
) -> None:
    plan = plan_history(span_s, max_points, interval_s)
    if plan.bucket_s is None:
        assert plan.source == "raw"
        assert span_s / interval_s <= max_points
    else:
        assert math.ceil(span_s / plan.bucket_s) <= max_points
        assert plan.source == "raw" or plan.bucket_s % 60 == 0


def test_stale_rule_edges() -> None:
    rule = StaleRule(stale_factor=3.0, stale_min_s=60.0)
    assert rule.threshold_s(600.0) == 1800.0
    assert rule.threshold_s(None) == 60.0
    back = T0 - timedelta(seconds=5)
    assert rule.state("offline", T0 - timedelta(minutes=1), back, 10.0, T0) == "online"
    assert rule.state("online", T0, None, 10.0, T0) == "online"


def test_metrics_rendering_escapes_and_flattens() -> None:
    families = service_families(
        [("ingest", 'host"1', 5.0, {"received": 3, "ratio": 0.5, "ok": False, "name": "x"})],
        stale_s=60.0,
    )
    text = render(families)
    assert 'hanoi_service_up{instance="host\\"1",service="ingest"} 1' in text
    assert 'hanoi_ingest_ratio{instance="host\\"1"} 0.5' in text
    assert 'hanoi_ingest_ok{instance="host\\"1"} 0' in text
    assert "hanoi_ingest_name" not in text
    assert metric_name("hanoi", "9lives", "a--b") == "hanoi_9lives_a_b"
    assert metric_name("9", "x") == "_9_x"
