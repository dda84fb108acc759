"""Annotated dependencies: the lifespan's state, a pooled connection, the caller and roles.

The lifespan yields one :class:`AppState` (no module-level globals); routes ask for what
they need::

    async def list_things(conn: ConnDep, principal: PrincipalDep) -> ThingsOut: ...
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Final

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from contract import StaleRule
from db import Conn
from ops_api.auth import Principal, Role
from ops_api.authenticator import Authenticator
from ops_api.errors import PermissionDeniedError, RateLimitedError
from ops_api.limits import LimitStats
from ops_api.queries import Pool
from ops_api.ratelimit import RateLimiter
from ops_api.settings import ApiSettings

if TYPE_CHECKING:
    from ops_api.live.broadcaster import Broadcaster

__all__ = [
    "AdminDep",
    "AdminWriteDep",
    "AppState",
    "ConnDep",
    "MetricsReaderDep",
    "OperatorDep",
    "OperatorWriteDep",
    "PrincipalDep",
    "QuarantineReaderDep",
    "SettingsDep",
    "StateDep",
    "app_state",
    "client_address",
]

_TOO_MANY_WRITES: Final = (
    "Quá nhiều thao tác ghi, vui lòng chậm lại",
    "Too many write requests for this token; slow down",
)
_NEED_OPERATOR: Final = ("Cần quyền điều hành viên (operator)", "This needs the operator role")
_NEED_ADMIN: Final = (
    "Cần quyền quản trị (admin) không giới hạn lĩnh vực",
    "This needs the admin role, not limited to some domains",
)
_SCOPED_QUARANTINE: Final = (
    "Mã truy cập giới hạn theo lĩnh vực không xem được dữ liệu cách ly",
    "A domain-scoped token cannot read the quarantine",
)


@dataclass(frozen=True, slots=True)
class AppState:
    """What the lifespan owns and hands to every request.

    Args:
        settings: the API's configuration.
        pool: the connection pool.
        broadcaster: the live feed hub.
        authenticator: resolves tokens to principals.
        stale_rule: when a station counts as stale.
        writes: the per-token rate limiter of write requests.
        limits: counters of requests refused by the request limits.
    """

    settings: ApiSettings
    pool: Pool
    broadcaster: Broadcaster
    authenticator: Authenticator
    stale_rule: StaleRule
    writes: RateLimiter
    limits: LimitStats


def app_state(connection: HTTPConnection) -> AppState:
    """The lifespan's state, for a request or a WebSocket.

    Raises:
        RuntimeError: when the app runs without its lifespan.
    """
    state = getattr(connection.state, "ops", None)
    if not isinstance(state, AppState):
        msg = "the ops API's lifespan did not run (use TestClient as a context manager)"
        raise RuntimeError(msg)
    return state


StateDep = Annotated[AppState, Depends(app_state)]


def _settings(state: StateDep) -> ApiSettings:
    return state.settings


SettingsDep = Annotated[ApiSettings, Depends(_settings)]


async def _connection(state: StateDep) -> AsyncIterator[Conn]:
    async with state.pool.connection(timeout=state.settings.db_timeout_s) as conn:
        yield conn


ConnDep = Annotated[Conn, Depends(_connection)]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API token (``hioc_…``, made by an admin) or a bootstrap token of API_TOKENS",
)


def client_address(connection: HTTPConnection) -> str:
    """The client's address (behind a trusted proxy: the one it reports)."""
    return connection.client.host if connection.client is not None else "unknown"


async def _principal(
    connection: HTTPConnection,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    client = client_address(connection)
    token = None if credentials is None else credentials.credentials
    if token is not None:
        state.authenticator.check_throttle(client)
    return await state.authenticator.principal(token, client)


PrincipalDep = Annotated[Principal, Depends(_principal)]


def _operator(principal: PrincipalDep) -> Principal:
    if not principal.has_role(Role.OPERATOR):
        raise PermissionDeniedError(*_NEED_OPERATOR)
    return principal


OperatorDep = Annotated[Principal, Depends(_operator)]


def _admin(principal: PrincipalDep) -> Principal:
    # A domain-scoped admin could otherwise make itself an unscoped token.
    if not principal.has_role(Role.ADMIN) or principal.is_scoped:
        raise PermissionDeniedError(*_NEED_ADMIN)
    return principal


AdminDep = Annotated[Principal, Depends(_admin)]


def _quarantine_reader(principal: OperatorDep) -> Principal:
    # Raw payloads cross domains; a domain-scoped token must not read them.
    if principal.is_scoped:
        raise PermissionDeniedError(*_SCOPED_QUARANTINE)
    return principal


QuarantineReaderDep = Annotated[Principal, Depends(_quarantine_reader)]


def _limit_writes(connection: HTTPConnection, state: AppState, principal: Principal) -> None:
    key = principal.limit_key(client_address(connection))
    wait_s = state.writes.take(key, now=time.monotonic())
    if wait_s > 0:
        raise RateLimitedError(*_TOO_MANY_WRITES, retry_after_s=int(wait_s) + 1)


def _operator_write(
    connection: HTTPConnection, state: StateDep, principal: OperatorDep
) -> Principal:
    _limit_writes(connection, state, principal)
    return principal


OperatorWriteDep = Annotated[Principal, Depends(_operator_write)]
"""An operator (or admin) making a change: rate-limited per token."""


def _admin_write(connection: HTTPConnection, state: StateDep, principal: AdminDep) -> Principal:
    _limit_writes(connection, state, principal)
    return principal


AdminWriteDep = Annotated[Principal, Depends(_admin_write)]
"""An admin making a change: rate-limited per token."""


async def _metrics_reader(
    connection: HTTPConnection,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    role = state.settings.effective_metrics_role
    if role is None:
        return
    principal = await _principal(connection, state, credentials)
    if not principal.has_role(role):
        message_vi = f"/metrics cần quyền {role.value}"
        raise PermissionDeniedError(message_vi, f"/metrics needs the {role.value} role")


MetricsReaderDep = Annotated[None, Depends(_metrics_reader)]
