"""Admin: alert subscribers (webhook receivers) — made, changed, re-keyed, removed (audited)."""

from __future__ import annotations

from typing import Annotated, Final

import psycopg
from fastapi import APIRouter, Path, Response

from ops_api.admin_schemas import SubscriberCreatedOut, SubscriberIn, SubscriberOut
from ops_api.deps import AdminDep, AdminWriteDep, ConnDep, SettingsDep
from ops_api.errors import ConflictError, NotFoundError
from ops_api.params import DbId
from ops_api.responses import ADMIN, errors
from ops_api.settings import ApiSettings
from ops_api.subscribers import (
    SubscriberChange,
    create_subscriber,
    delete_subscriber,
    get_subscriber,
    list_subscribers,
    rotate_subscriber_secret,
    update_subscriber,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/subscribers", tags=["admin"])

SubscriberIdPath = Annotated[DbId, Path()]
_NAME_TAKEN: Final = ("Tên người nhận đã tồn tại", "A subscriber with this name exists")
_NO_KEY: Final = (
    "Chưa cấu hình API_SECRET_KEY: không tạo được khóa ký",
    "API_SECRET_KEY is not configured: no signing secret can be made",
)


class _NotConfiguredError(ConflictError):
    code = "not_configured"


def _change(body: SubscriberIn) -> SubscriberChange:
    return SubscriberChange(
        name=body.name,
        url=str(body.url),
        domains=None if body.domains is None else [d.value for d in body.domains],
        min_severity=body.min_severity.value,
        districts=body.districts,
        enabled=body.enabled,
    )


def _key(settings: ApiSettings) -> bytes:
    key = settings.secret_key_bytes
    if key is None:
        raise _NotConfiguredError(*_NO_KEY)
    return key


def _missing(subscriber_id: int) -> NotFoundError:
    return NotFoundError(f"Không có người nhận #{subscriber_id}", f"No subscriber {subscriber_id}")


@router.get("", summary="Người nhận cảnh báo / Alert subscribers", responses=errors(*ADMIN))
async def get_subscribers(conn: ConnDep, _admin: AdminDep) -> list[SubscriberOut]:
    """Every subscriber (never a secret)."""
    return [SubscriberOut.from_record(r) for r in await list_subscribers(conn)]


@router.post(
    "",
    status_code=201,
    summary="Thêm người nhận / Add a subscriber",
    responses=errors(*ADMIN, 409),
)
async def post_subscriber(
    conn: ConnDep, settings: SettingsDep, admin: AdminWriteDep, body: SubscriberIn
) -> SubscriberCreatedOut:
    """Add a subscriber; the response holds its signing secret, once."""
    made = await create_subscriber(conn, _change(body), key=_key(settings), actor=admin.name)
    if made is None:
        raise ConflictError(*_NAME_TAKEN)
    secret, record = made
    return SubscriberCreatedOut(secret=secret, record=SubscriberOut.from_record(record))


@router.get(
    "/{subscriber_id}", summary="Một người nhận / One subscriber", responses=errors(*ADMIN, 404)
)
async def get_one_subscriber(
    conn: ConnDep, _admin: AdminDep, subscriber_id: SubscriberIdPath
) -> SubscriberOut:
    """One subscriber."""
    record = await get_subscriber(conn, subscriber_id)
    if record is None:
        raise _missing(subscriber_id)
    return SubscriberOut.from_record(record)


@router.put(
    "/{subscriber_id}",
    summary="Sửa người nhận / Change a subscriber",
    responses=errors(*ADMIN, 404, 409),
)
async def put_subscriber(
    conn: ConnDep, admin: AdminWriteDep, subscriber_id: SubscriberIdPath, body: SubscriberIn
) -> SubscriberOut:
    """Replace a subscriber's URL, filters and state (its secret stays)."""
    try:
        record = await update_subscriber(conn, subscriber_id, _change(body), actor=admin.name)
    except psycopg.errors.UniqueViolation:
        raise ConflictError(*_NAME_TAKEN) from None
    if record is None:
        raise _missing(subscriber_id)
    return SubscriberOut.from_record(record)


@router.post(
    "/{subscriber_id}/rotate-secret",
    summary="Đổi khóa ký / New signing secret",
    responses=errors(*ADMIN, 404, 409),
)
async def post_rotate_secret(
    conn: ConnDep, settings: SettingsDep, admin: AdminWriteDep, subscriber_id: SubscriberIdPath
) -> SubscriberCreatedOut:
    """A new signing secret (the old one stops at once); shown once."""
    rotated = await rotate_subscriber_secret(
        conn, subscriber_id, key=_key(settings), actor=admin.name
    )
    if rotated is None:
        raise _missing(subscriber_id)
    secret, record = rotated
    return SubscriberCreatedOut(secret=secret, record=SubscriberOut.from_record(record))


@router.delete(
    "/{subscriber_id}",
    status_code=204,
    summary="Xóa người nhận / Remove a subscriber",
    responses=errors(*ADMIN, 404),
)
async def delete_one_subscriber(
    conn: ConnDep, admin: AdminWriteDep, subscriber_id: SubscriberIdPath
) -> Response:
    """Remove a subscriber (the audit trail keeps what it was)."""
    if not await delete_subscriber(conn, subscriber_id, actor=admin.name):
        raise _missing(subscriber_id)
    return Response(status_code=204)
