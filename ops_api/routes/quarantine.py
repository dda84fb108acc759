"""Refused messages (operators and admins; not for domain-scoped tokens)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from ops_api.deps import ConnDep, QuarantineReaderDep
from ops_api.queries import list_quarantine
from ops_api.schemas import ErrorOut, QuarantineListOut, QuarantineOut

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["quarantine"])


@router.get(
    "/quarantine",
    summary="Dữ liệu bị cách ly / Quarantine",
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}},
)
async def get_quarantine(
    conn: ConnDep,
    _principal: QuarantineReaderDep,
    reason: Annotated[str | None, Query(max_length=64, description="e.g. schema")] = None,
    since: Annotated[AwareDatetime | None, Query(description="received at or after")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> QuarantineListOut:
    """Refused messages, newest first; payloads as text, or base64 when binary."""
    rows = await list_quarantine(conn, reason=reason, since=since, limit=limit)
    return QuarantineListOut(items=[QuarantineOut.from_row(r) for r in rows])
