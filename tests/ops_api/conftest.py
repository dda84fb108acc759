"""Fixtures of the ops API tests: settings with test tokens, a running app, a seeded DB."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Final

import psycopg
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from ops_api.app import create_app
from ops_api.settings import ApiSettings
from tests.ops_api.seed import SyncConn

with warnings.catch_warnings():
    # starlette prefers httpx2 for its TestClient; httpx still works (see the report).
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient, WebSocketTestSession

VIEWER: Final = "viewer-token-000000000001"
OPERATOR: Final = "operator-token-0000000001"
ADMIN: Final = "admin-token-000000000001"
FLOOD: Final = "flood-dept-token-00000001"
TOKENS: Final = {
    VIEWER: {"role": "viewer", "name": "viewer-1"},
    OPERATOR: {"role": "operator", "name": "op-1"},
    ADMIN: {"role": "admin", "name": "admin-1"},
    FLOOD: {"role": "viewer", "name": "so-tnmt", "scope_domains": ["flood"]},
}

__all__ = [
    "ADMIN",
    "FLOOD",
    "OPERATOR",
    "VIEWER",
    "TestClient",
    "WebSocketTestSession",
    "bearer",
    "make_settings",
    "receive_until",
]


def make_settings(db_url: str, **overrides: object) -> ApiSettings:
    """Strict (non-dev) settings with the test tokens and fast polling."""
    values: dict[str, object] = {
        "env": "test",
        "database_url": db_url,
        "tokens": TOKENS,
        "readings_poll_s": 0.1,
        "status_poll_s": 0.1,
        "ws_heartbeat_s": 0.3,
        "ws_pong_timeout_s": 120.0,  # TestClient sessions answer pings only where a test does
        "ws_auth_timeout_s": 2.0,
        "public_base_url": "https://ioc.example.vn",
        "listen_backoff_initial_s": 0.05,
        "listen_backoff_max_s": 0.2,
        **overrides,
    }
    return ApiSettings.model_validate(values)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def receive_until(
    ws: WebSocketTestSession,
    kind: str,
    *,
    timeout_s: float = 10.0,
    where: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """The next message of type ``kind`` (skipping others, e.g. pings, which keep coming).

    JSON from the wire is ``Any`` to the type checker; the assertions check its shape.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = ws.receive_json()
        assert isinstance(message, dict)
        if message.get("type") == kind and (where is None or where(message)):
            return message
    raise AssertionError(f"no {kind!r} message within {timeout_s} s")


@pytest.fixture
def db(db_url: str) -> Iterator[SyncConn]:
    """A synchronous autocommit connection for seeding."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def api(db_url: str) -> Iterator[TestClient]:
    """The app on the test database, lifespan running."""
    with TestClient(create_app(make_settings(db_url))) as client:
        yield client
