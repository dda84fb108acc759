"""Public alerts as OASIS CAP 1.2: an Atom feed per public domain and one message per alert.

Only public rules are published (:mod:`ops_api.cap_rules`): a sensor-health, data-quality
or operations alert is absent from every feed, and asking for its CAP message is a 404.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Path, Response

from contract import now_utc
from db import Conn
from ops_api.alert_queries import AlertRecord, get_alert, public_alerts, public_versions
from ops_api.auth import Principal
from ops_api.cap import CapContext, cap_alert, cap_feed, to_xml
from ops_api.cap_rules import FEEDS, PUBLIC_ACTIONS, CapFeed, FeedName, profile_of
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
_NOT_PUBLIC: Final = (
    "Không có bản tin CAP cho cảnh báo này (chỉ cảnh báo công khai được phát hành)",
    "No CAP message for this alert (only public alerts are published)",
)


def _check_scope(principal: Principal, feed: CapFeed) -> None:
    if not principal.can_see(feed.domain):
        vi = f"Mã truy cập không bao gồm lĩnh vực {feed.domain.value}"
        en = f"The token excludes the {feed.domain.value} domain"
        raise PermissionDeniedError(vi, en)


async def _contexts(
    conn: Conn, records: list[AlertRecord], settings: ApiSettings, web: str
) -> list[tuple[AlertRecord, CapContext]]:
    """Each publishable record with its context (a record with no public version is left)."""
    versions = await public_versions(conn, [r.alert_id for r in records], PUBLIC_ACTIONS)
    domains = sorted({r.alert.domain for r in records if r.alert.domain})
    stations: dict[str, StationRow] = {
        s.station_id: s for s in await list_stations(conn, domains=domains)
    }
    out = []
    for record in records:
        version = versions.get(record.alert_id)
        profile = profile_of(record.alert.rule)
        if version is None or profile is None:
            continue
        station = stations.get(record.alert.station_id or "")
        place = [station.name if station else record.alert.station_id, record.alert.district]
        desc = ", ".join(p for p in place if p) or "Hà Nội"
        context = CapContext(
            sender=settings.cap_sender,
            status=settings.effective_cap_status,
            versions=version,
            profile=profile,
            lat=station.lat if station else None,
            lon=station.lon if station else None,
            place_vi=f"{desc}, Hà Nội",
            place_en=f"{desc}, Hanoi",
            web=web,
        )
        out.append((record, context))
    return out


def _xml(media_type: str) -> dict[str, object]:
    return {"content": {media_type: {"schema": {"type": "string"}}}, "description": "CAP 1.2"}


async def _feed(
    name: FeedName, conn: Conn, state_settings: ApiSettings, principal: Principal
) -> Response:
    feed = FEEDS[name]
    _check_scope(principal, feed)
    now = now_utc()
    base = state_settings.base_url
    window = timedelta(seconds=state_settings.cap_cleared_window_s)
    records = await public_alerts(
        conn, feed.rules, cleared_since=now - window, cleared_max=state_settings.cap_cleared_max
    )
    contexts = await _contexts(conn, records, state_settings, f"{base}/")
    entries = [
        (r, cap_alert(r, ctx), f"{base}{router.prefix}/alerts/{r.alert_id}.xml")
        for r, ctx in contexts
    ]
    document = cap_feed(feed, entries, self_url=f"{base}{router.prefix}/{name}.xml", updated=now)
    return Response(to_xml(document), media_type=ATOM_XML)


_FEED_DOC: Final = (
    "Every open alert of the feed's public rules, whatever its age, and those cleared within "
    "``API_CAP_CLEARED_WINDOW_S`` (as all-clear messages), each as CAP 1.2 inside an Atom "
    "entry. Links are absolute, built from ``API_PUBLIC_BASE_URL``."
)


@router.get(
    "/flood.xml",
    summary="Bản tin CAP ngập úng và mưa lớn / Flood and heavy-rain alerts (CAP 1.2, Atom)",
    description=_FEED_DOC,
    response_class=Response,
    responses={200: _xml(ATOM_XML), **errors(*READ, 403)},
)
async def flood_cap_feed(conn: ConnDep, state: StateDep, principal: PrincipalDep) -> Response:
    """Observed and forecast street flooding and heavy rain."""
    return await _feed("flood", conn, state.settings, principal)


@router.get(
    "/air.xml",
    summary="Bản tin CAP ô nhiễm không khí / Air-pollution episodes (CAP 1.2, Atom)",
    description=_FEED_DOC,
    response_class=Response,
    responses={200: _xml(ATOM_XML), **errors(*READ, 403)},
)
async def air_cap_feed(conn: ConnDep, state: StateDep, principal: PrincipalDep) -> Response:
    """Air-pollution episodes (the official hourly VN_AQI)."""
    return await _feed("air", conn, state.settings, principal)


@router.get(
    "/water.xml",
    summary="Bản tin CAP chất lượng nước hồ / Lake water-quality alerts (CAP 1.2, Atom)",
    description=_FEED_DOC,
    response_class=Response,
    responses={200: _xml(ATOM_XML), **errors(*READ, 403)},
)
async def water_cap_feed(conn: ConnDep, state: StateDep, principal: PrincipalDep) -> Response:
    """Low dissolved oxygen and algal blooms in the lakes."""
    return await _feed("water", conn, state.settings, principal)


@router.get(
    "/alerts/{alert_id}.xml",
    name="cap_alert",
    summary="Một bản tin CAP / One CAP 1.2 message",
    response_class=Response,
    responses={200: _xml(CAP_XML), **errors(*READ, 403, 404)},
)
async def public_cap_alert(
    conn: ConnDep,
    state: StateDep,
    principal: PrincipalDep,
    alert_id: Annotated[DbId, Path()],
) -> Response:
    """The current CAP 1.2 message of one public alert (``vi-VN`` and ``en-US`` blocks).

    404 ``not_found`` for an alert that is not public (sensor health, data quality,
    operations), as for one that does not exist or lies outside the token's scope.
    """
    record = await get_alert(conn, alert_id)
    profile = None if record is None else profile_of(record.alert.rule)
    if record is None or profile is None or not principal.can_see(FEEDS[profile.feed].domain):
        raise NotFoundError(*_NOT_PUBLIC)
    made = await _contexts(conn, [record], state.settings, f"{state.settings.base_url}/")
    if not made:
        raise NotFoundError(*_NOT_PUBLIC)
    ((_, ctx),) = made
    return Response(to_xml(cap_alert(record, ctx)), media_type=CAP_XML)
