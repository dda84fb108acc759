"""Administration: tokens, subscribers and stations through the admin routes and the CLI,
stored hashed, every change audited."""

from __future__ import annotations

import hashlib
from typing import Any

import anyio
import psycopg
import pytest

from db import load_registry
from hanoi_ioc.cli import main as cli_main
from ops_api.app import create_app
from ops_api.subscribers import secret_matches, subscriber_secret
from tests.ops_api import seed
from tests.ops_api.conftest import (
    ADMIN,
    OPERATOR,
    VIEWER,
    TestClient,
    bearer,
    make_settings,
)
from tests.ops_api.seed import SyncConn

pytestmark = pytest.mark.db

SECRET_KEY = "test-secret-key-0123456789abcdefghijkl"


@pytest.fixture
def admin_api(db_url: str) -> Any:
    settings = make_settings(
        db_url, secret_key=SECRET_KEY, token_cache_s=60.0, write_burst=1000,
        tokens={ADMIN: {"role": "admin", "name": "admin-1"},
                VIEWER: {"role": "viewer", "name": "viewer-1"},
                "scoped-admin-token-0001": {"role": "admin", "name": "x",
                                            "scope_domains": ["flood"]}},
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        yield client


def _audit(db: SyncConn, kind: str) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT actor, action, target_id, details FROM admin_audit WHERE target_kind = %s "
        "ORDER BY audit_id",
        (kind,),
    ).fetchall()


def test_token_lifecycle(admin_api: TestClient, db: SyncConn) -> None:
    admin = bearer(ADMIN)
    made = admin_api.post(
        "/api/admin/tokens", headers=admin,
        json={"name": "so-tnmt", "role": "viewer", "scope_domains": ["flood"]},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    token, record = made.json()["token"], made.json()["record"]
    assert token.startswith("hioc_")
    assert record["prefix"] == token[:9]
    # stored only as a hash
    (stored,) = db.execute("SELECT token_hash::text, prefix FROM api_tokens").fetchall()
    assert token not in str(stored)
    assert db.execute(
        "SELECT count(*) FROM api_tokens WHERE token_hash = %s",
        (hashlib.sha256(token.encode()).digest(),),
    ).fetchone() == (1,)
    # it works, with its scope
    seed.add_station(db, "aq-hoan-kiem", "air", {"pm25": ("ug/m3", 60.0)})
    seed.add_station(db, "fd-thai-ha", "flood", {"water_depth": ("cm", 30.0)})
    stations = admin_api.get("/api/stations", headers=bearer(token)).json()["features"]
    assert [f["id"] for f in stations] == ["fd-thai-ha"]
    listed = admin_api.get("/api/admin/tokens", headers=admin).json()
    assert [t["name"] for t in listed] == ["so-tnmt"]
    assert "token" not in listed[0]
    # rotation with a grace period: both work for now
    rotated = admin_api.post(
        f"/api/admin/tokens/{record['token_id']}/rotate", headers=admin, json={"grace_s": 600}
    )
    assert rotated.status_code == 201
    new = rotated.json()["token"]
    assert admin_api.get("/api/alerts", headers=bearer(new)).status_code == 200
    assert admin_api.get("/api/alerts", headers=bearer(token)).status_code == 200
    # revocation takes effect at once in this process (the cache is dropped)
    revoked = admin_api.post(f"/api/admin/tokens/{record['token_id']}/revoke", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_by"] == "admin-1"
    assert admin_api.get("/api/alerts", headers=bearer(token)).status_code == 401
    again = admin_api.post(f"/api/admin/tokens/{record['token_id']}/rotate", headers=admin)
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert admin_api.post("/api/admin/tokens/999/revoke", headers=admin).status_code == 404
    actions = [(a[0], a[1]) for a in _audit(db, "token")]
    assert actions == [
        ("admin-1", "token.create"),
        ("admin-1", "token.rotate"),
        ("admin-1", "token.revoke"),
    ]
    assert token not in str(_audit(db, "token"))
    assert new not in str(_audit(db, "token"))


def test_only_unscoped_admins_administer(admin_api: TestClient) -> None:
    body = {"name": "x", "role": "admin"}
    assert admin_api.post("/api/admin/tokens", headers=bearer(VIEWER), json=body).status_code == 403
    scoped = bearer("scoped-admin-token-0001")
    assert admin_api.post("/api/admin/tokens", headers=scoped, json=body).status_code == 403
    assert admin_api.get("/api/admin/audit", headers=scoped).status_code == 403
    assert admin_api.get("/api/admin/tokens").status_code == 401


def test_expired_tokens_authenticate_nobody(admin_api: TestClient) -> None:
    made = admin_api.post(
        "/api/admin/tokens", headers=bearer(ADMIN),
        json={"name": "old", "expires_at": "2020-01-01T00:00:00+07:00"},
    )  # fmt: skip
    assert made.status_code == 201
    reply = admin_api.get("/api/alerts", headers=bearer(made.json()["token"]))
    assert (reply.status_code, reply.json()["code"]) == (401, "unauthenticated")
    assert reply.headers["www-authenticate"] == "Bearer"


def test_subscribers_keep_no_secret(admin_api: TestClient, db: SyncConn) -> None:
    admin = bearer(ADMIN)
    body = {"name": "so-tnmt-webhook", "url": "https://tnmt.hanoi.example/hooks/ioc",
            "domains": ["flood"], "min_severity": "moderate", "districts": ["Đống Đa"]}  # fmt: skip
    made = admin_api.post("/api/admin/subscribers", headers=admin, json=body)
    assert made.status_code == 201, made.text
    secret, record = made.json()["secret"], made.json()["record"]
    assert secret.startswith("whsec_")
    row = db.execute("SELECT secret_salt, secret_hash, url FROM alert_subscribers").fetchone()
    assert row is not None
    assert isinstance(row[0], bytes)
    assert isinstance(row[1], bytes)
    salt, digest = row[0], row[1]
    assert secret.encode() not in salt + digest
    # whoever signs webhooks derives the same secret from the row and the server key
    assert subscriber_secret(SECRET_KEY.encode(), salt) == secret
    assert secret_matches(secret, digest)
    duplicate = admin_api.post("/api/admin/subscribers", headers=admin, json=body)
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "conflict")
    sid = record["subscriber_id"]
    changed = admin_api.put(
        f"/api/admin/subscribers/{sid}", headers=admin, json={**body, "enabled": False}
    )
    assert changed.json()["enabled"] is False
    rotated = admin_api.post(f"/api/admin/subscribers/{sid}/rotate-secret", headers=admin)
    assert rotated.json()["record"]["secret_version"] == 2
    assert rotated.json()["secret"] != secret
    assert admin_api.delete(f"/api/admin/subscribers/{sid}", headers=admin).status_code == 204
    assert admin_api.get(f"/api/admin/subscribers/{sid}", headers=admin).status_code == 404
    actions = [a[1] for a in _audit(db, "subscriber")]
    assert actions == [
        "subscriber.create", "subscriber.update", "subscriber.rotate_secret", "subscriber.delete",
    ]  # fmt: skip
    assert secret not in str(_audit(db, "subscriber"))


def test_subscribers_need_a_server_key(db_url: str) -> None:
    settings = make_settings(db_url)  # env "test" and no API_SECRET_KEY
    with TestClient(create_app(settings)) as api:
        reply = api.post(
            "/api/admin/subscribers", headers=bearer(ADMIN),
            json={"name": "x", "url": "https://x.example"},
        )  # fmt: skip
        assert (reply.status_code, reply.json()["code"]) == (409, "not_configured")


def _station(
    lat: float = 21.0106, sensors: list[dict[str, object]] | None = None
) -> dict[str, object]:
    return {
        "domain": "flood", "name": "Tây Sơn × Thái Hà", "district": "Đống Đa", "lat": lat,
        "lon": 105.8210, "kind": "flood_depth",
        "sensors": sensors if sensors is not None else [
            {"quantity": "water_depth", "interval_s": 60.0, "valid_min": 0.0, "valid_max": 300.0},
            {"quantity": "rainfall", "interval_s": 300.0},
        ],
        "attributes": {"upstream": "rg-o-cho-dua"},
    }  # fmt: skip


def _registry_ids(db_url: str) -> dict[str, list[str]]:
    async def load() -> dict[str, list[str]]:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            registry = await load_registry(conn)
        return {
            k: sorted(s.quantity.value for s in v.sensors) for k, v in registry.stations.items()
        }

    return anyio.run(load)


def test_stations_are_added_moved_and_retired(
    admin_api: TestClient, db_url: str, db: SyncConn
) -> None:
    admin = bearer(ADMIN)
    path = "/api/admin/stations/fd-new-1"
    made = admin_api.put(path, headers=admin, json=_station())
    assert made.status_code == 201, made.text
    assert _registry_ids(db_url) == {"fd-new-1": ["rainfall", "water_depth"]}
    assert admin_api.get("/api/stations/fd-new-1", headers=bearer(VIEWER)).status_code == 200
    # moved, and its rain gauge taken away
    depth_only = [{"quantity": "water_depth", "interval_s": 60.0}]
    moved = admin_api.put(path, headers=admin, json=_station(lat=21.02, sensors=depth_only))
    assert moved.status_code == 200
    assert moved.json()["retired_sensors"] == ["rainfall"]
    assert moved.json()["lat"] == 21.02
    assert _registry_ids(db_url) == {"fd-new-1": ["water_depth"]}
    # retired: history kept, out of the registry and the public API
    assert admin_api.delete(path, headers=admin).status_code == 204
    assert admin_api.delete(path, headers=admin).status_code == 404
    assert _registry_ids(db_url) == {}
    assert admin_api.get("/api/stations/fd-new-1", headers=bearer(VIEWER)).status_code == 404
    assert admin_api.get(path, headers=admin).json()["retired_at"] is not None
    assert db.execute("SELECT count(*) FROM stations").fetchone() == (1,)
    # and back
    assert admin_api.put(path, headers=admin, json=_station()).status_code == 200
    assert _registry_ids(db_url) == {"fd-new-1": ["rainfall", "water_depth"]}
    actions = [a[1] for a in _audit(db, "station")]
    assert actions == ["station.create", "station.move", "station.retire", "station.reactivate"]


def test_stations_get_the_registry_files_validation(admin_api: TestClient) -> None:
    admin = bearer(ADMIN)
    path = "/api/admin/stations/fd-new-2"
    bad_bodies = [
        _station(sensors=[{"quantity": "pm25", "interval_s": 60.0}]),  # an air quantity
        _station(sensors=[{"quantity": "water_depth", "interval_s": 0}]),
        {**_station(), "lat": 91.0},
        {**_station(), "lat": "21.0"},
        {**_station(), "attributes": {"bad key!": 1}},
        {**_station(), "name": "a\x00b"},
        {**_station(), "unknown": 1},
    ]
    for body in bad_bodies:
        reply = admin_api.put(path, headers=admin, json=body)
        assert reply.status_code == 422, body
    reply = admin_api.put("/api/admin/stations/Bad_Id", headers=admin, json=_station())
    assert reply.status_code == 422
    nan = admin_api.put(
        path, headers={**admin, "Content-Type": "application/json"},
        content=b'{"domain": "flood", "name": "x", "district": "y", "lat": NaN, "lon": 1, '
        b'"kind": "k"}',
    )  # fmt: skip
    assert nan.status_code == 422


def test_cli_tokens(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "tokens",
        "create",
        "--name",
        "first-admin",
        "--role",
        "admin",
        "--database-url",
        db_url,
    ]
    assert cli_main(args) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("hioc_")
    with TestClient(create_app(make_settings(db_url, tokens={}))) as api:
        assert api.get("/api/admin/tokens", headers=bearer(token)).status_code == 200
    assert cli_main(["tokens", "list", "--database-url", db_url]) == 0
    assert "first-admin" in capsys.readouterr().out
    assert cli_main(["tokens", "revoke", "1", "--database-url", db_url]) == 0
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT actor, action FROM admin_audit ORDER BY audit_id").fetchall()
    assert [r[1] for r in row] == ["token.create", "token.revoke"]
    assert all(str(r[0]).startswith("cli") for r in row)
    assert cli_main(["tokens", "rotate", "1", "--database-url", db_url]) == 1


def test_operator_token_cannot_administer(admin_api: TestClient) -> None:
    assert admin_api.get("/api/admin/stations", headers=bearer(OPERATOR)).status_code == 401
