"""What each route documents in OpenAPI beyond its 200: every error status it can return.

Every error has the :class:`~ops_api.schemas.ErrorOut` body; 429 and 503 also document
``Retry-After``. Routes list their statuses with :func:`errors`; the groups below are the
usual sets (a read route that needs the database, a write route, an admin route).

>>> sorted(errors(401, 503))
[401, 503]
"""

from __future__ import annotations

from typing import Any, Final

from ops_api.schemas import ErrorOut

__all__ = ["ADMIN", "PUBLIC_READ", "READ", "WRITE", "errors"]

_ERROR_REF: Final = "#/components/schemas/ErrorOut"
_RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_DESCRIPTIONS: Final = {
    400: "bad request",
    401: "no token where one is required, or an unknown, expired or revoked token",
    403: "the token's role or domain scope does not allow this",
    404: "no such thing, or outside the token's scope",
    409: "the current state does not allow this",
    413: "the request body is larger than the limit (refused before it is read)",
    422: "invalid parameters or body (code invalid_request or malformed_json)",
    429: "too many writes for this token, or failed authentications from this address "
    "(code rate_limited)",
    503: "overloaded, query_timeout or database_unavailable; try again after Retry-After",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        # "content" names JSON even on routes whose own media type is XML or plain text.
        entry: dict[str, Any] = {
            "model": ErrorOut,
            "description": _DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}},
        }
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


PUBLIC_READ: Final = (422, 503)
"""A read route anyone may call (a token is checked only when given)."""
READ: Final = (401, 422, 429, 503)
"""A read route: a token may be required, its address throttled after failed attempts, the
database busy (add 403/404 where a role, a scope or an id applies)."""
WRITE: Final = (401, 403, 404, 409, 413, 422, 429, 503)
"""An operator or admin action with a body."""
ADMIN: Final = (401, 403, 413, 422, 429, 503)
"""An admin route (add 404/409 where they apply)."""
