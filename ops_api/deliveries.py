"""Webhook deliveries for admins: listed, and queued again under their own ids (audited).

The outbox itself is :mod:`db.webhooks` (written by a trigger with each alert event, drained
by the dispatcher, :mod:`webhooks`); this adds what an administrative change needs: the
audit row, in the transaction of the change.
"""

from __future__ import annotations

import uuid
from typing import Literal

from db import Conn
from db.webhooks import DeliveryRecord, redeliver
from ops_api.audit import record_change

__all__ = ["redeliver_many", "redeliver_one"]


async def redeliver_one(conn: Conn, delivery_id: uuid.UUID, *, actor: str) -> DeliveryRecord | None:
    """Queue one delivery again now; None when there is none, or it was withheld."""
    async with conn.transaction():
        found = await redeliver(conn, delivery_ids=[delivery_id])
        for record in found:
            await record_change(
                conn, actor=actor, action="delivery.redeliver", kind="delivery",
                target=str(record.delivery_id),
                details={"subscriber_id": record.subscriber_id, "event_id": record.event_id},
            )  # fmt: skip
    return found[0] if found else None


async def redeliver_many(
    conn: Conn,
    *,
    status: Literal["dead", "delivered", "pending"] = "dead",
    subscriber_id: int | None = None,
    actor: str,
) -> list[DeliveryRecord]:
    """Queue again every delivery in ``status`` (by default every dead letter), one audit row."""
    async with conn.transaction():
        found = await redeliver(conn, status=status, subscriber_id=subscriber_id)
        if found:
            await record_change(
                conn, actor=actor, action=f"delivery.redeliver_{status}", kind="delivery",
                target="all" if subscriber_id is None else f"subscriber:{subscriber_id}",
                details={"count": len(found), "subscriber_id": subscriber_id},
            )  # fmt: skip
    return found
