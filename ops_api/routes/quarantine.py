"""Refused messages (operators and admins; not for domain-scoped tokens)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ops_api.deps import ConnDep, QuarantineReaderDep
from ops_api.params import ApiDatetime
from ops_api.queries import list_quarantine
from ops_api.responses import READ, errors
from ops_api.schemas import QuarantineListOut, QuarantineOut

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["quarantine"])


@router.get(
    "/quarantine",
    summary="Dữ liệu bị cách ly / Quarantine",
    responses=errors(*READ, 403),
)
async def get_quarantine(
    conn: ConnDep,
    _principal: QuarantineReaderDep,
    reason: Annotated[
        str | None, Query(max_length=64, pattern=r"^[a-z0-9_]+$", description="e.g. schema")
    ] = None,
    since: Annotated[ApiDatetime | None, Query(description="received at or after")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> QuarantineListOut:
    """Refused messages, newest first; payloads as text, or base64 when binary."""
    rows = await list_quarantine(conn, reason=reason, since=since, limit=limit)
    return QuarantineListOut(items=[QuarantineOut.from_row(r) for r in rows])
