"""The administrative audit trail: every change to tokens, subscribers and stations.

:func:`record_change` is called inside the transaction that makes the change, so a change
and its audit row commit together or not at all. Details never hold a secret (a token, a
webhook secret or their hashes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import JsonValue

from db import Conn

__all__ = ["AuditRow", "TargetKind", "list_audit", "record_change"]

TargetKind = Literal["token", "subscriber", "station", "delivery"]


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One administrative change."""

    audit_id: int
    at: datetime
    actor: str
    action: str
    target_kind: str
    target_id: str
    details: dict[str, JsonValue]


async def record_change(
    conn: Conn,
    *,
    actor: str,
    action: str,
    kind: TargetKind,
    target: str,
    details: Mapping[str, JsonValue] | None = None,
) -> None:
    """Append one audit row (in the caller's transaction)."""
    await conn.execute(
        "INSERT INTO admin_audit (actor, action, target_kind, target_id, details) "
        "VALUES (%s, %s, %s, %s, %s)",
        (actor, action, kind, target, Jsonb(dict(details or {}))),
    )


_LIST: Final = """
SELECT audit_id, at, actor, action, target_kind, target_id, details FROM admin_audit
WHERE (%(kind)s::text IS NULL OR target_kind = %(kind)s)
  AND (%(target)s::text IS NULL OR target_id = %(target)s)
  AND (%(before)s::bigint IS NULL OR audit_id < %(before)s)
ORDER BY audit_id DESC LIMIT %(limit)s
"""


async def list_audit(
    conn: Conn,
    *,
    kind: TargetKind | None = None,
    target: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[AuditRow]:
    """Audit rows, newest first (``before``: page below this id)."""
    params = {"kind": kind, "target": target, "before": before, "limit": limit}
    async with conn.cursor(row_factory=class_row(AuditRow)) as cur:
        await cur.execute(_LIST, params)
        return await cur.fetchall()
