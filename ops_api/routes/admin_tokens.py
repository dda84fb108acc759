"""Admin: API tokens — made, listed, rotated and revoked (each change audited)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Body, Path, Query

from ops_api.admin_schemas import TokenCreatedOut, TokenIn, TokenOut, TokenRotateIn
from ops_api.deps import AdminDep, AdminWriteDep, ConnDep, StateDep
from ops_api.errors import ConflictError, NotFoundError
from ops_api.params import DbId
from ops_api.responses import ADMIN, errors
from ops_api.tokens import (
    TokenInactiveError,
    create_token,
    get_token,
    list_tokens,
    revoke_token,
    rotate_token,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/tokens", tags=["admin"])

TokenIdPath = Annotated[DbId, Path()]
_NO_TOKEN: Final = ("Không có mã truy cập #{}", "No token {}")
_INACTIVE: Final = (
    "Mã truy cập đã bị thu hồi hoặc hết hạn: hãy tạo mã mới",
    "The token is revoked or expired: make a new one",
)


def _missing(token_id: int) -> NotFoundError:
    vi, en = _NO_TOKEN
    return NotFoundError(vi.format(token_id), en.format(token_id))


@router.get("", summary="Mã truy cập / API tokens", responses=errors(*ADMIN))
async def get_tokens(
    conn: ConnDep,
    _admin: AdminDep,
    include_inactive: Annotated[bool, Query(description="revoked and expired too")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[TokenOut]:
    """Tokens, newest first (never the tokens themselves)."""
    records = await list_tokens(conn, include_inactive=include_inactive, limit=limit)
    return [TokenOut.from_record(r) for r in records]


@router.post(
    "",
    status_code=201,
    summary="Tạo mã truy cập / Make a token",
    responses=errors(*ADMIN),
)
async def post_token(conn: ConnDep, admin: AdminWriteDep, body: TokenIn) -> TokenCreatedOut:
    """Make a token; the response holds it, once (only its hash is stored)."""
    scope = None if body.scope_domains is None else frozenset(body.scope_domains)
    token, record = await create_token(
        conn, name=body.name, role=body.role, scope=scope, expires_at=body.expires_at,
        actor=admin.name,
    )  # fmt: skip
    return TokenCreatedOut(token=token, record=TokenOut.from_record(record))


@router.get("/{token_id}", summary="Một mã truy cập / One token", responses=errors(*ADMIN, 404))
async def get_one_token(conn: ConnDep, _admin: AdminDep, token_id: TokenIdPath) -> TokenOut:
    """One token's record (active or not)."""
    record = await get_token(conn, token_id)
    if record is None:
        raise _missing(token_id)
    return TokenOut.from_record(record)


@router.post(
    "/{token_id}/rotate",
    status_code=201,
    summary="Đổi mã truy cập / Rotate a token",
    responses=errors(*ADMIN, 404, 409),
)
async def post_rotate(
    conn: ConnDep,
    state: StateDep,
    admin: AdminWriteDep,
    token_id: TokenIdPath,
    body: Annotated[TokenRotateIn | None, Body()] = None,
) -> TokenCreatedOut:
    """A new token with the same grant; the old one works ``grace_s`` seconds more (0: none).

    409 when the token is already revoked or expired.
    """
    grace_s = 0.0 if body is None else body.grace_s
    try:
        rotated = await rotate_token(conn, token_id, actor=admin.name, grace_s=grace_s)
    except TokenInactiveError:
        raise ConflictError(*_INACTIVE) from None
    if rotated is None:
        raise _missing(token_id)
    state.authenticator.forget()
    token, record = rotated
    return TokenCreatedOut(token=token, record=TokenOut.from_record(record))


@router.post(
    "/{token_id}/revoke",
    summary="Thu hồi mã truy cập / Revoke a token",
    responses=errors(*ADMIN, 404),
)
async def post_revoke(
    conn: ConnDep, state: StateDep, admin: AdminWriteDep, token_id: TokenIdPath
) -> TokenOut:
    """Revoke a token at once (other API instances stop accepting it within token_cache_s).

    Revoking a revoked token changes nothing and answers as the first time.
    """
    record = await revoke_token(conn, token_id, actor=admin.name)
    if record is None:
        raise _missing(token_id)
    state.authenticator.forget()
    return TokenOut.from_record(record)
