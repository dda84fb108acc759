"""Flood alerts as OASIS CAP 1.2: an Atom feed and one message per alert."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Path, Response

from contract import Domain, now_utc
from db import Conn
from ops_api.alert_queries import AlertRecord, first_events, get_alert, list_alerts
from ops_api.auth import Principal
from ops_api.cap import CapContext, cap_alert, flood_feed, to_xml
from ops_api.deps import ConnDep, PrincipalDep, StateDep
from ops_api.errors import NotFoundError, PermissionDeniedError
from ops_api.params import DbId
from ops_api.queries import StationRow, list_stations
from ops_api.responses import READ, errors
from ops_api.settings import ApiSettings

__all__ = ["router"]

router = APIRouter(prefix="/api/cap", tags=["cap"])

CAP_XML: Final = "application/cap+xml"
ATOM_XML: Final = "application/atom+xml"
_CLEARED_KEPT: Final = timedelta(hours=6)  # cleared alerts stay in the feed as AllClear
_NOT_FLOOD: Final = ("Chỉ cảnh báo ngập có bản tin CAP", "CAP is published for flood alerts only")
_NO_FLOOD_SCOPE: Final = ("Mã truy cập không bao gồm lĩnh vực ngập", "The token excludes flood")


def _check_scope(principal: Principal) -> None:
    if not principal.can_see(Domain.FLOOD):
        raise PermissionDeniedError(*_NO_FLOOD_SCOPE)


async def _contexts(
    conn: Conn, records: list[AlertRecord], settings: ApiSettings, web: str
) -> list[CapContext]:
    firsts = await first_events(conn, [r.alert_id for r in records])
    stations: dict[str, StationRow] = {
        s.station_id: s for s in await list_stations(conn, domains=[Domain.FLOOD.value])
    }
    contexts = []
    for record in records:
        first = firsts.get(record.alert_id)
        station = stations.get(record.alert.station_id or "")
        place = [station.name if station else record.alert.station_id, record.alert.district]
        desc = ", ".join(p for p in place if p) or "Hà Nội"
        contexts.append(
            CapContext(
                sender=settings.cap_sender,
                status=settings.effective_cap_status,
                first_event_id=first.event_id if first else (record.last_event_id or 0),
                first_sent=first.at if first else record.raised_at,
                lat=station.lat if station else None,
                lon=station.lon if station else None,
                place_vi=f"{desc}, Hà Nội",
                place_en=f"{desc}, Hanoi",
                web=web,
            )
        )
    return contexts


def _xml(media_type: str) -> dict[str, object]:
    return {"content": {media_type: {"schema": {"type": "string"}}}, "description": "CAP 1.2"}


@router.get(
    "/flood.xml",
    summary="Bản tin CAP cảnh báo ngập / Flood alerts (CAP 1.2, Atom)",
    response_class=Response,
    responses={200: _xml(ATOM_XML), **errors(*READ, 403)},
)
async def flood_cap_feed(conn: ConnDep, state: StateDep, principal: PrincipalDep) -> Response:
    """Open flood alerts (and those cleared in the last 6 h) as CAP 1.2 inside an Atom feed.

    Links are absolute, built from ``API_PUBLIC_BASE_URL`` (never from the request's Host).
    """
    _check_scope(principal)
    now = now_utc()
    base = state.settings.base_url
    records = [
        r
        for r in await list_alerts(conn, domains=[Domain.FLOOD.value], limit=500)
        if r.cleared_at is None or now - r.cleared_at <= _CLEARED_KEPT
    ]
    contexts = await _contexts(conn, records, state.settings, f"{base}/")
    entries = [
        (r, cap_alert(r, ctx), f"{base}{router.prefix}/alerts/{r.alert_id}.xml")
        for r, ctx in zip(records, contexts, strict=True)
    ]
    feed = flood_feed(entries, self_url=f"{base}{router.prefix}/flood.xml", updated=now)
    return Response(to_xml(feed), media_type=ATOM_XML)


@router.get(
    "/alerts/{alert_id}.xml",
    name="flood_cap_alert",
    summary="Một bản tin CAP / One CAP 1.2 message",
    response_class=Response,
    responses={200: _xml(CAP_XML), **errors(*READ, 403, 404)},
)
async def flood_cap_alert(
    conn: ConnDep,
    state: StateDep,
    principal: PrincipalDep,
    alert_id: Annotated[DbId, Path()],
) -> Response:
    """The current CAP 1.2 message of one flood alert (``vi-VN`` and ``en-US`` info blocks)."""
    _check_scope(principal)
    record = await get_alert(conn, alert_id)
    if record is None or record.alert.domain != Domain.FLOOD.value:
        raise NotFoundError(*_NOT_FLOOD)
    (ctx,) = await _contexts(conn, [record], state.settings, f"{state.settings.base_url}/")
    return Response(to_xml(cap_alert(record, ctx)), media_type=CAP_XML)
