"""Bounded in every dimension, no 500 from any input, overload is not an outage.

Body, URL and header limits are checked on real uvicorn (its parser is part of the limit);
the rest through the app.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from urllib.parse import quote

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from ops_api.app import create_app, log_config
from ops_api.limits import LimitStats, RequestLimits
from ops_api.redact import RedactingFilter
from tests.ops_api import seed
from tests.ops_api.conftest import (
    OPERATOR,
    VIEWER,
    TestClient,
    bearer,
    make_settings,
)
from tests.ops_api.seed import SyncConn
from tests.ops_api.server import free_port, running_api

pytestmark = pytest.mark.db


def _raw(url: str, request: bytes, *, read_s: float = 5.0) -> bytes:
    """Send raw bytes to the server and read what it answers before closing."""
    host, port = url.removeprefix("http://").split(":")
    chunks = []
    with socket.create_connection((host, int(port)), timeout=read_s) as sock:
        try:
            sock.sendall(request)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            pass  # the server answered (or not) and closed: what it sent is the answer
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _body(answer: bytes) -> dict[str, object]:
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert isinstance(body, dict)
    return body


@pytest.fixture
def served(db_url: str) -> Iterator[str]:
    settings = make_settings(db_url, port=free_port(), max_body_bytes=4096, max_url_bytes=1024)
    with running_api(settings) as url:
        yield url


def test_a_huge_body_is_refused_unread_and_before_authentication(served: str) -> None:
    # 300 MB announced, no token, only the headers sent: 413 at once, the body never read.
    head = (
        b"POST /api/alerts/1/comment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 300000000\r\n\r\n"
    )
    started = time.monotonic()
    answer = _raw(served, head + b'{"note": "', read_s=5)
    assert time.monotonic() - started < 4  # answered, and the connection closed, at once
    assert _status(answer) == 413
    body = _body(answer)
    assert body["code"] == "payload_too_large"
    assert {"detail", "message_vi", "message_en"} <= body.keys()


def test_a_chunked_body_is_cut_at_the_limit(served: str) -> None:
    chunk = b"x" * 3000
    request = (
        b"POST /api/alerts/1/comment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer "
        + OPERATOR.encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))
    )
    answer = _raw(served, request)
    assert _status(answer) == 413
    assert _body(answer)["code"] == "payload_too_large"


def test_url_and_header_limits(served: str) -> None:
    long_url = b"/api/stations?district=" + b"a" * 2000
    answer = _raw(served, b"GET " + long_url + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (_status(answer), _body(answer)["code"]) == (414, "uri_too_long")
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(100))
    answer = _raw(served, b"GET /health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert (_status(answer), _body(answer)["code"]) == (431, "headers_too_large")
    big = b"X-Big: " + b"y" * 20_000 + b"\r\n"
    answer = _raw(served, b"GET /health HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    assert (_status(answer), _body(answer)["code"]) == (431, "headers_too_large")
    # far more than the parser buffers: refused by uvicorn itself, never a 5xx
    huge = b"X-Huge: " + b"y" * 2_000_000 + b"\r\n"
    answer = _raw(served, b"GET /health HTTP/1.1\r\nHost: x\r\n" + huge + b"\r\n")
    assert answer == b"" or 400 <= _status(answer) < 500


@pytest.mark.anyio
async def test_concurrency_limit_answers_overloaded() -> None:
    release = anyio.Event()
    entered = anyio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    stats = LimitStats()
    limits = RequestLimits(
        slow_app, max_body_bytes=1024, max_url_bytes=1024, max_headers=10,
        max_header_bytes=4096, max_concurrent=1, retry_after_s=3, stats=stats,
    )  # fmt: skip
    sent: list[list[Message]] = [[], []]

    async def call(index: int, path: str) -> None:
        scope: Scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
                        "query_string": b"", "headers": []}  # fmt: skip

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent[index].append(message)

        await limits(scope, receive, send)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(call, 0, "/api/stations")
        await entered.wait()
        await call(1, "/api/latest")
        release.set()
    start = sent[1][0]
    assert start["status"] == 503
    assert (b"retry-after", b"3") in start["headers"]
    assert json.loads(sent[1][1]["body"])["code"] == "overloaded"
    assert sent[0][0]["status"] == 204
    assert stats.refused == {"overloaded": 1}
    assert stats.in_flight == 0


def test_every_bad_input_is_a_documented_4xx(api: TestClient, db: SyncConn) -> None:
    seed.add_station(db, "fd-thai-ha", "flood", {"water_depth": ("cm", 30.0)})
    alert_id, _ = seed.add_alert(db, station_id="fd-thai-ha", domain="flood")
    h = bearer(OPERATOR)
    cases = [
        ("GET", f"/api/alerts?since_event={2**63}", None),
        ("GET", "/api/alerts?station=%00", None),
        ("GET", "/api/history?sensor=fd-thai-ha.water_depth&to=0.5", None),
        ("GET", "/api/stations?district=" + quote("Đống\x00Đa"), None),
        ("GET", "/api/alerts/99999999999999999999", None),
        ("POST", f"/api/alerts/{alert_id}/comment", b'{"note": "a\\u0000b"}'),
        ("POST", f"/api/alerts/{alert_id}/comment", b'{"note": "\\ud800"}'),
        ("POST", f"/api/alerts/{alert_id}/comment", b'{"note": "x" * 3}'),
        ("POST", f"/api/alerts/{alert_id}/comment", b"\xff\xfe not utf-8"),
        ("POST", f"/api/alerts/{alert_id}/comment", b'{"note": "' + b"n" * 2001 + b'"}'),
    ]
    for method, path, content in cases:
        reply = api.request(method, path, headers={**h, "Content-Type": "application/json"},
                            content=content)  # fmt: skip
        assert reply.status_code == 422, (path, content, reply.text)
        body = reply.json()
        assert body["code"] in {"invalid_request", "malformed_json"}, body
        assert body["message_vi"]
        assert body["message_en"]
        assert body["detail"]
    note = api.post(f"/api/alerts/{alert_id}/comment", headers=h, json={"note": "x"})
    assert note.status_code == 200  # the alert is fine; only the inputs above were not
    missing = api.get("/api/nothing-here", headers=h)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    wrong = api.delete("/api/alerts", headers=h)
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
    assert "GET" in wrong.headers["allow"]


def test_writes_are_rate_limited_per_token(db_url: str, db: SyncConn) -> None:
    seed.add_station(db, "fd-thai-ha", "flood", {"water_depth": ("cm", 30.0)})
    alert_id, _ = seed.add_alert(db, station_id="fd-thai-ha", domain="flood")
    settings = make_settings(db_url, write_burst=3, write_rate_per_s=0.01)
    with TestClient(create_app(settings)) as api:
        url = f"/api/alerts/{alert_id}/comment"
        codes = [api.post(url, headers=bearer(OPERATOR), json={"note": "n"}).status_code
                 for _ in range(4)]  # fmt: skip
        assert codes == [200, 200, 200, 429]
        limited = api.post(url, headers=bearer(OPERATOR), json={"note": "n"})
        assert limited.json()["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert api.get("/api/alerts", headers=bearer(OPERATOR)).status_code == 200  # reads go on


def test_failed_authentications_are_throttled_per_address(db_url: str) -> None:
    settings = make_settings(db_url, auth_failures_per_min=3)
    with TestClient(create_app(settings)) as api:
        codes = [api.get("/api/alerts", headers=bearer(f"hioc_guess{i:040d}")).status_code
                 for i in range(5)]  # fmt: skip
        assert codes == [401, 401, 401, 429, 429]
        assert api.get("/api/alerts").status_code == 401  # no token: nothing to guess


def _hold_pool(api: TestClient) -> anyio.Event:
    """Take the app's only pooled connection until the returned event is set."""
    state = api.app_state["ops"]
    release = anyio.Event()
    taken = anyio.Event()

    async def hold() -> None:
        async with state.pool.connection():
            taken.set()
            await release.wait()

    assert api.portal is not None
    api.portal.start_task_soon(hold)
    api.portal.call(taken.wait)
    return release


def test_pool_exhaustion_is_overloaded_not_database_down(db_url: str) -> None:
    settings = make_settings(db_url, db_pool_min_size=1, db_pool_max_size=1, db_timeout_s=0.3)
    with TestClient(create_app(settings)) as api:
        assert api.get("/api/alerts", headers=bearer(VIEWER)).status_code == 200
        release = _hold_pool(api)
        busy = api.get("/api/alerts", headers=bearer(VIEWER))
        assert api.portal is not None
        api.portal.call(release.set)
        assert busy.status_code == 503
        assert busy.json()["code"] == "overloaded"
        assert busy.headers["retry-after"] == "2"
        assert api.get("/api/alerts", headers=bearer(VIEWER)).status_code == 200


def test_database_down_and_slow_queries_have_their_own_codes(db_url: str) -> None:
    down = make_settings("postgresql://nobody@127.0.0.1:9/none", db_timeout_s=0.3)
    with TestClient(create_app(down)) as api:
        reply = api.get("/api/alerts", headers=bearer(VIEWER))
        assert (reply.status_code, reply.json()["code"]) == (503, "database_unavailable")
        assert reply.headers["retry-after"] == "2"
    slow = make_settings(db_url, db_statement_timeout_s=0.001)
    with TestClient(create_app(slow)) as api:
        reply = api.get("/api/stations", headers=bearer(VIEWER))
        assert (reply.status_code, reply.json()["code"]) == (503, "query_timeout")


def test_tokens_never_reach_the_logs() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/ws?token=hioc_" + "s" * 43 + "&x=1", "1.1", 101), None,
    )  # fmt: skip
    assert RedactingFilter().filter(record)
    line = record.getMessage()
    assert "sss" not in line
    assert "token=[redacted]&x=1" in line
    error = logging.LogRecord(
        "ops_api", logging.WARNING, __file__, 1, "bad header Authorization: Bearer %s",
        ("abc.def-ghi",), None,
    )  # fmt: skip
    RedactingFilter().filter(error)
    assert "abc.def" not in error.getMessage()
    config = log_config()
    assert all(h.get("filters") == ["redact"] for h in config["handlers"].values())


def test_absolute_links_come_from_the_public_base_url(api: TestClient, db: SyncConn) -> None:
    seed.add_station(db, "fd-thai-ha", "flood", {"water_depth": ("cm", 30.0)})
    alert_id, _ = seed.add_alert(db, station_id="fd-thai-ha", domain="flood", rule="flood_depth")
    headers = {**bearer(VIEWER), "Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    feed = api.get("/api/cap/flood.xml", headers=headers).text
    one = api.get(f"/api/cap/alerts/{alert_id}.xml", headers=headers).text
    assert "evil.example" not in feed + one
    assert f"https://ioc.example.vn/api/cap/alerts/{alert_id}.xml" in feed
    assert "https://ioc.example.vn/api/cap/flood.xml" in feed
    assert "<web>https://ioc.example.vn/</web>" in one


def test_docs_are_local_and_can_be_switched_off(db_url: str) -> None:
    with TestClient(create_app(make_settings(db_url))) as api:
        for page in ("/docs", "/redoc"):
            html = api.get(page).text
            assert "/docs/assets/" in html
            assert "http://" not in html
            assert "https://" not in html.replace("https://fastapi.tiangolo.com", "")
        assert api.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
        assert api.get("/docs/assets/redoc.standalone.js").status_code == 200
        assert api.get("/openapi.json").status_code == 200
    with TestClient(create_app(make_settings(db_url, docs_enabled=False))) as api:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui.css"):
            assert api.get(path).status_code == 404


def test_metrics_can_be_protected(db_url: str) -> None:
    with TestClient(create_app(make_settings(db_url))) as api:
        assert api.get("/metrics").status_code == 401
        assert api.get("/metrics", headers=bearer(VIEWER)).status_code == 200
    with TestClient(create_app(make_settings(db_url, metrics_role="operator"))) as api:
        assert api.get("/metrics", headers=bearer(VIEWER)).status_code == 403
        assert api.get("/metrics", headers=bearer(OPERATOR)).status_code == 200
    with TestClient(create_app(make_settings(db_url, metrics_role=None))) as api:
        assert api.get("/metrics").status_code == 200
