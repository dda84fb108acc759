"""Admin: webhook deliveries — listed (dead letters among them) and queued again (audited)."""

from __future__ import annotations

import uuid
from typing import Annotated, Final

from fastapi import APIRouter, Path, Query

from db.webhooks import DeliveryStatus, get_delivery, list_deliveries
from ops_api.admin_schemas import DeliveryOut, RedeliveredOut, RedeliverIn
from ops_api.deliveries import redeliver_many, redeliver_one
from ops_api.deps import AdminDep, AdminWriteDep, ConnDep
from ops_api.errors import ConflictError, NotFoundError
from ops_api.params import BIGINT_MAX
from ops_api.responses import ADMIN, errors

__all__ = ["redeliveries", "router"]

router = APIRouter(prefix="/api/admin/deliveries", tags=["admin"])
redeliveries = APIRouter(prefix="/api/admin/redeliveries", tags=["admin"])

DeliveryIdPath = Annotated[uuid.UUID, Path()]
_WITHHELD: Final = (
    "Cảnh báo này không công khai: không gửi ra ngoài trung tâm",
    "This alert is not a public hazard: it is never sent outside the operations centre",
)


def _missing(delivery_id: uuid.UUID) -> NotFoundError:
    return NotFoundError(f"Không có lượt gửi {delivery_id}", f"No delivery {delivery_id}")


@router.get("", summary="Lượt gửi webhook / Webhook deliveries", responses=errors(*ADMIN))
async def get_deliveries(
    conn: ConnDep,
    _admin: AdminDep,
    status: DeliveryStatus | None = None,
    subscriber_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    alert_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """Deliveries, newest first; ``status=dead`` lists the dead letters."""
    found = await list_deliveries(
        conn, status=status, subscriber_id=subscriber_id, alert_id=alert_id, limit=limit
    )
    return [DeliveryOut.from_record(r) for r in found]


@router.get("/{delivery_id}", summary="Một lượt gửi / One delivery", responses=errors(*ADMIN, 404))
async def get_one_delivery(
    conn: ConnDep, _admin: AdminDep, delivery_id: DeliveryIdPath
) -> DeliveryOut:
    """One delivery: its state, attempts and the receiver's last answer."""
    record = await get_delivery(conn, delivery_id)
    if record is None:
        raise _missing(delivery_id)
    return DeliveryOut.from_record(record)


@router.post(
    "/{delivery_id}/redeliver",
    summary="Gửi lại / Redeliver",
    responses=errors(*ADMIN, 404, 409),
)
async def post_redeliver(
    conn: ConnDep, admin: AdminWriteDep, delivery_id: DeliveryIdPath
) -> DeliveryOut:
    """Queue a delivery again now, under the same delivery id (receivers deduplicate on it).

    A dead or delivered one starts a new series of attempts; a pending one is attempted at
    once. It still waits for earlier pending events of its alert.
    """
    record = await redeliver_one(conn, delivery_id, actor=admin.name)
    if record is not None:
        return DeliveryOut.from_record(record)
    if await get_delivery(conn, delivery_id) is None:
        raise _missing(delivery_id)
    raise ConflictError(*_WITHHELD)


@redeliveries.post(
    "",
    summary="Gửi lại hàng loạt / Redeliver many",
    responses=errors(*ADMIN),
)
async def post_redeliver_many(
    conn: ConnDep, admin: AdminWriteDep, body: RedeliverIn
) -> RedeliveredOut:
    """Queue again every delivery in a state (by default every dead letter), of a subscriber."""
    found = await redeliver_many(
        conn, status=body.status, subscriber_id=body.subscriber_id, actor=admin.name
    )
    return RedeliveredOut(count=len(found), delivery_ids=[str(r.delivery_id) for r in found])
