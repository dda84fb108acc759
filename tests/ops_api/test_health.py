"""Quarantine listing, /health and /metrics (parsed as Prometheus text)."""

from __future__ import annotations

import base64
import re
import time
from datetime import timedelta

import pytest

from ops_api.app import create_app
from tests.ops_api import seed
from tests.ops_api.conftest import (
    ADMIN,
    FLOOD,
    OPERATOR,
    VIEWER,
    TestClient,
    bearer,
    make_settings,
)
from tests.ops_api.seed import SyncConn

pytestmark = pytest.mark.db

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of a text exposition; fails on any line that is not valid."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in {"counter", "gauge", "untyped"}
            assert name not in typed, f"{name} declared twice"
            typed.add(name)
            continue
        if line.startswith("# HELP ") or not line:
            continue
        match = _SAMPLE.match(line)
        assert match is not None, f"not a sample: {line!r}"
        assert match["name"] in typed, f"{match['name']} has no TYPE"
        labels = frozenset(_LABEL.findall(match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def test_quarantine_listing(api: TestClient, db: SyncConn) -> None:
    seed.add_quarantine(db, b'{"station": 1}', "schema", "station: expected str")
    seed.add_quarantine(db, b"\xff\xfe\x00binary", "not_utf8")
    seed.add_quarantine(db, b"x" * 5000, "oversized")
    body = api.get("/api/quarantine", headers=bearer(OPERATOR)).json()
    items = {i["reason"]: i for i in body["items"]}
    assert items["schema"]["payload_encoding"] == "text"
    assert items["schema"]["payload"] == '{"station": 1}'
    assert items["schema"]["detail"] == "station: expected str"
    binary = items["not_utf8"]
    assert binary["payload_encoding"] == "base64"
    assert base64.b64decode(binary["payload"]) == b"\xff\xfe\x00binary"
    assert (items["oversized"]["payload_truncated"], items["oversized"]["payload_bytes"]) == (
        True,
        5000,
    )
    only = api.get("/api/quarantine?reason=schema", headers=bearer(ADMIN)).json()
    assert [i["reason"] for i in only["items"]] == ["schema"]
    since = (seed.now() + timedelta(minutes=1)).isoformat()
    later = api.get("/api/quarantine", params={"since": since}, headers=bearer(ADMIN)).json()
    assert later["items"] == []
    assert api.get("/api/quarantine", headers=bearer(VIEWER)).status_code == 403
    assert api.get("/api/quarantine", headers=bearer(FLOOD)).status_code == 403


def test_health_reports_services(api: TestClient, db: SyncConn) -> None:
    seed.add_heartbeat(db, "ingest", "host-1", timedelta(seconds=2), {"received": 10})
    deadline = time.monotonic() + 15
    body = api.get("/health").json()
    while not body["live"]["listener_connected"] and time.monotonic() < deadline:
        time.sleep(0.1)  # the alert listener connects in the background at start-up
        body = api.get("/health").json()
    assert body["status"] == "ok"
    assert body["database"]["reachable"] is True
    (service,) = body["services"]
    assert (service["service"], service["status"], service["stats"]) == (
        "ingest",
        "ok",
        {"received": 10},
    )
    assert body["time"].endswith("Z")
    assert body["time_local"].endswith("+07:00")
    seed.add_heartbeat(db, "processing", "host-1", timedelta(minutes=5), {})
    degraded = api.get("/health")
    assert degraded.status_code == 200
    assert degraded.json()["status"] == "degraded"


def test_health_without_database(db_url: str) -> None:
    settings = make_settings("postgresql://nobody@127.0.0.1:9/none", db_timeout_s=0.3)
    with TestClient(create_app(settings)) as api:
        response = api.get("/health")
        assert response.status_code == 503
        assert response.json()["status"] == "down"
        assert api.get("/api/alerts", headers=bearer(VIEWER)).status_code == 503
        samples = parse_prometheus(api.get("/metrics", headers=bearer(VIEWER)).text)
        assert samples[("hanoi_api_db_up", frozenset())] == 0.0


def test_metrics_exposition(api: TestClient, db: SyncConn) -> None:
    stats = {
        "received": 10,
        "stored": 9,
        "healthy": True,
        "mode": "plain",
        "quarantined_by_reason": {"schema": 1, "not_utf8": 2},
        "writer": {"batches": {"flushed": 4}},
    }
    seed.add_heartbeat(db, "ingest", "host-1", timedelta(seconds=1), stats)
    response = api.get("/metrics", headers=bearer(VIEWER))
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_prometheus(response.text)
    inst = ("instance", "host-1")
    assert samples[("hanoi_ingest_received", frozenset({inst}))] == 10
    assert samples[("hanoi_ingest_healthy", frozenset({inst}))] == 1
    assert (
        samples[("hanoi_ingest_quarantined_by_reason", frozenset({inst, ("key", "not_utf8")}))] == 2
    )
    assert samples[("hanoi_ingest_writer_batches", frozenset({inst, ("key", "flushed")}))] == 4
    svc = frozenset({("service", "ingest"), inst})
    assert samples[("hanoi_service_up", svc)] == 1
    assert not any(name == "hanoi_ingest_mode" for name, _ in samples)
    assert samples[("hanoi_api_db_up", frozenset())] == 1
    assert samples[("hanoi_api_ws_clients", frozenset())] == 0
    sent = ("hanoi_api_ws_messages_sent_total", frozenset({("channel", "alerts")}))
    assert samples[sent] == 0
