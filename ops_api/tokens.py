"""API tokens stored in the database: made, rotated, revoked and looked up, only ever hashed.

A token is ``hioc_`` followed by 43 URL-safe characters (256 random bits). The database keeps
its SHA-256 and its first nine characters (``prefix``, to tell tokens apart in lists and
logs); the token itself is returned once, when it is made. Every change writes an audit row
in the same transaction (:mod:`ops_api.audit`).

>>> token = new_token()
>>> token.startswith("hioc_"), len(token), len(token_hash(token))
(True, 48, 32)
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from psycopg.rows import class_row
from pydantic import JsonValue

from contract import Domain, now_utc
from db import Conn
from ops_api.audit import record_change
from ops_api.auth import Role

__all__ = [
    "TOKEN_PREFIX",
    "TokenInactiveError",
    "TokenRecord",
    "create_token",
    "find_active_token",
    "get_token",
    "list_tokens",
    "new_token",
    "revoke_token",
    "rotate_token",
    "token_hash",
]

TOKEN_PREFIX: Final = "hioc_"  # noqa: S105 - a prefix, not a secret
_SHOWN: Final = 9  # "hioc_" and four characters


def new_token() -> str:
    """A fresh random token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """What the database stores of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token (never the token itself)."""

    token_id: int
    name: str
    role: str
    scope_domains: list[str] | None
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    replaced_by: int | None
    last_used_at: datetime | None

    def is_active(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def scope(self) -> frozenset[Domain] | None:
        """The domains it is scoped to."""
        return None if self.scope_domains is None else frozenset(map(Domain, self.scope_domains))


_COLUMNS: Final = (
    "token_id, name, role, scope_domains, prefix, created_at, created_by, expires_at, "
    "revoked_at, revoked_by, replaced_by, last_used_at"
)


async def _insert(
    conn: Conn,
    *,
    name: str,
    role: Role,
    scope: frozenset[Domain] | None,
    expires_at: datetime | None,
    actor: str,
) -> tuple[str, TokenRecord]:
    token = new_token()
    domains = None if scope is None else sorted(d.value for d in scope)
    async with conn.cursor(row_factory=class_row(TokenRecord)) as cur:
        await cur.execute(
            "INSERT INTO api_tokens (name, role, scope_domains, token_hash, prefix, created_by, "
            f"expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (name, role.value, domains, token_hash(token), token[:_SHOWN], actor, expires_at),
        )
        record = await cur.fetchone()
    assert record is not None  # noqa: S101 - INSERT ... RETURNING gives one row
    return token, record


async def create_token(
    conn: Conn,
    *,
    name: str,
    role: Role,
    scope: frozenset[Domain] | None,
    expires_at: datetime | None,
    actor: str,
) -> tuple[str, TokenRecord]:
    """Make a token; returns it (shown once) and its record."""
    async with conn.transaction():
        token, record = await _insert(
            conn, name=name, role=role, scope=scope, expires_at=expires_at, actor=actor
        )
        await record_change(
            conn,
            actor=actor,
            action="token.create",
            kind="token",
            target=str(record.token_id),
            details=_details(record),
        )
    return token, record


async def get_token(conn: Conn, token_id: int) -> TokenRecord | None:
    """One token's record."""
    async with conn.cursor(row_factory=class_row(TokenRecord)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE token_id = %s", (token_id,))
        return await cur.fetchone()


async def list_tokens(conn: Conn, *, include_inactive: bool, limit: int) -> list[TokenRecord]:
    """Tokens, newest first (active ones only unless ``include_inactive``)."""
    async with conn.cursor(row_factory=class_row(TokenRecord)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE %s OR (revoked_at IS NULL AND "
            "(expires_at IS NULL OR expires_at > now())) ORDER BY token_id DESC LIMIT %s",
            (include_inactive, limit),
        )
        return await cur.fetchall()


class TokenInactiveError(Exception):
    """The token exists but is revoked or expired: it cannot be rotated."""


async def _lock(conn: Conn, token_id: int) -> tuple[TokenRecord, bool] | None:
    """The token's row, locked, and whether it is active; ``None`` when there is none."""
    async with conn.cursor(row_factory=class_row(TokenRecord)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE token_id = %s FOR UPDATE", (token_id,)
        )
        record = await cur.fetchone()
    if record is None:
        return None
    return record, record.is_active(now_utc())


async def revoke_token(conn: Conn, token_id: int, *, actor: str) -> TokenRecord | None:
    """Revoke a token at once (a revoked one stays as it was); ``None`` when there is none."""
    async with conn.transaction():
        locked = await _lock(conn, token_id)
        if locked is None:
            return None
        if locked[0].revoked_at is not None:
            return locked[0]
        async with conn.cursor(row_factory=class_row(TokenRecord)) as cur:
            await cur.execute(
                "UPDATE api_tokens SET revoked_at = now(), revoked_by = %s WHERE token_id = %s "
                f"RETURNING {_COLUMNS}",
                (actor, token_id),
            )
            record = await cur.fetchone()
        assert record is not None  # noqa: S101 - the row is locked above
        await record_change(
            conn, actor=actor, action="token.revoke", kind="token", target=str(token_id)
        )
    return record


async def rotate_token(
    conn: Conn, token_id: int, *, actor: str, grace_s: float
) -> tuple[str, TokenRecord] | None:
    """Replace an active token by a new one with the same grant.

    The old token keeps working for ``grace_s`` seconds (0: it stops at once), so a holder
    can switch without an outage. ``None`` when there is no such token.

    Raises:
        TokenInactiveError: when it is revoked or expired.
    """
    async with conn.transaction():
        locked = await _lock(conn, token_id)
        if locked is None:
            return None
        old, active = locked
        if not active:
            msg = f"token {token_id} is revoked or expired"
            raise TokenInactiveError(msg)
        token, record = await _insert(
            conn,
            name=old.name,
            role=Role(old.role),
            scope=old.scope,
            expires_at=old.expires_at,
            actor=actor,
        )
        if grace_s > 0:
            await conn.execute(
                "UPDATE api_tokens SET replaced_by = %s, expires_at = least(coalesce(expires_at, "
                "'infinity'), now() + %s) WHERE token_id = %s",
                (record.token_id, timedelta(seconds=grace_s), token_id),
            )
        else:
            await conn.execute(
                "UPDATE api_tokens SET replaced_by = %s, revoked_at = now(), revoked_by = %s "
                "WHERE token_id = %s",
                (record.token_id, actor, token_id),
            )
        details: dict[str, JsonValue] = {
            **_details(record), "replaces": token_id, "grace_s": grace_s,
        }  # fmt: skip
        await record_change(
            conn, actor=actor, action="token.rotate", kind="token", target=str(token_id),
            details=details,
        )  # fmt: skip
    return token, record


_FIND: Final = f"""
WITH found AS (
    SELECT {_COLUMNS} FROM api_tokens
    WHERE token_hash = %(hash)s AND revoked_at IS NULL
      AND (expires_at IS NULL OR expires_at > now())
), touched AS (
    UPDATE api_tokens SET last_used_at = now()
    WHERE token_id = (SELECT token_id FROM found)
      AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
)
SELECT * FROM found
"""


async def find_active_token(conn: Conn, token: str) -> TokenRecord | None:
    """The active token with this value (noting its use, at most once a minute)."""
    async with conn.cursor(row_factory=class_row(TokenRecord)) as cur:
        await cur.execute(_FIND, {"hash": token_hash(token)})
        return await cur.fetchone()


def _details(record: TokenRecord) -> dict[str, JsonValue]:
    return {
        "name": record.name,
        "role": record.role,
        "scope_domains": None if record.scope_domains is None else list(record.scope_domains),
        "prefix": record.prefix,
        "expires_at": None if record.expires_at is None else record.expires_at.isoformat(),
    }
