"""Annotated dependencies: the lifespan's state, a pooled connection, the caller and roles.

The lifespan yields one :class:`AppState` (no module-level globals); routes ask for what
they need::

    async def list_things(conn: ConnDep, principal: PrincipalDep) -> ThingsOut: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Final

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from contract import StaleRule
from db import Conn
from ops_api.auth import ANONYMOUS, Principal, Role, resolve_token
from ops_api.errors import AuthenticationError, PermissionDeniedError
from ops_api.queries import Pool
from ops_api.settings import ApiSettings, TokenGrant

if TYPE_CHECKING:
    from ops_api.live.broadcaster import Broadcaster

__all__ = [
    "AdminDep",
    "AppState",
    "ConnDep",
    "OperatorDep",
    "PrincipalDep",
    "QuarantineReaderDep",
    "SettingsDep",
    "StateDep",
    "app_state",
    "authenticate",
]

_NEED_TOKEN: Final = ("Cần mã truy cập (token)", "An API token is required")
_UNKNOWN_TOKEN: Final = ("Mã truy cập không hợp lệ", "Unknown API token")
_NEED_OPERATOR: Final = ("Cần quyền điều hành viên (operator)", "This needs the operator role")
_NEED_ADMIN: Final = ("Cần quyền quản trị (admin)", "This needs the admin role")
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
        grants: the effective token -> grant table.
        stale_rule: when a station counts as stale.
    """

    settings: ApiSettings
    pool: Pool
    broadcaster: Broadcaster
    grants: Mapping[str, TokenGrant]
    stale_rule: StaleRule


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
    description="API token from API_TOKENS (dev: dev-viewer, dev-operator, dev-admin, dev-flood)",
)


def authenticate(token: str | None, state: AppState) -> Principal:
    """The principal for ``token`` (``None``: anonymous, if allowed).

    Raises:
        AuthenticationError: no token where one is required, or an unknown token.
    """
    if token is None:
        if state.settings.anonymous_viewers:
            return ANONYMOUS
        raise AuthenticationError(*_NEED_TOKEN)
    principal = resolve_token(token, state.grants)
    if principal is None:
        raise AuthenticationError(*_UNKNOWN_TOKEN)
    return principal


def _principal(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return authenticate(None if credentials is None else credentials.credentials, state)


PrincipalDep = Annotated[Principal, Depends(_principal)]


def _operator(principal: PrincipalDep) -> Principal:
    if not principal.has_role(Role.OPERATOR):
        raise PermissionDeniedError(*_NEED_OPERATOR)
    return principal


OperatorDep = Annotated[Principal, Depends(_operator)]


def _admin(principal: PrincipalDep) -> Principal:
    if not principal.has_role(Role.ADMIN):
        raise PermissionDeniedError(*_NEED_ADMIN)
    return principal


AdminDep = Annotated[Principal, Depends(_admin)]


def _quarantine_reader(principal: OperatorDep) -> Principal:
    # Raw payloads cross domains; a domain-scoped token must not read them.
    if principal.is_scoped:
        raise PermissionDeniedError(*_SCOPED_QUARANTINE)
    return principal


QuarantineReaderDep = Annotated[Principal, Depends(_quarantine_reader)]
