"""Admin: the audit trail of administrative changes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from ops_api.admin_schemas import AuditListOut, AuditOut
from ops_api.audit import list_audit
from ops_api.deps import AdminDep, ConnDep
from ops_api.params import BIGINT_MAX, LABEL_PATTERN
from ops_api.responses import ADMIN, errors

__all__ = ["router"]

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/audit", summary="Nhật ký quản trị / Admin audit trail", responses=errors(*ADMIN))
async def get_audit(
    conn: ConnDep,
    _admin: AdminDep,
    kind: Literal["token", "subscriber", "station", "delivery"] | None = None,
    target: Annotated[str | None, Query(max_length=64, pattern=LABEL_PATTERN)] = None,
    before: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditListOut:
    """Administrative changes, newest first (``before``: the next page)."""
    rows = await list_audit(conn, kind=kind, target=target, before=before, limit=limit)
    return AuditListOut(items=[AuditOut.from_row(r) for r in rows])
