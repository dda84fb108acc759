"""The alert inbox: list, detail with audit trail, and the operator actions."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Body, Path, Query

from contract import Domain
from db import Conn
from ops_api.alert_queries import (
    current_event_id,
    events_by_ids,
    events_of,
    get_alert,
    list_alerts,
)
from ops_api.alert_schemas import (
    ActionIn,
    ActionOut,
    AlertDetailOut,
    AlertEventOut,
    AlertListOut,
    AlertOut,
    CommentIn,
)
from ops_api.auth import Principal
from ops_api.deps import ConnDep, OperatorWriteDep, PrincipalDep
from ops_api.errors import NotFoundError
from ops_api.params import BIGINT_MAX, STATION_PATTERN, DbId
from ops_api.responses import READ, WRITE, errors
from ops_api.routes.stations import domain_names
from processing.alerts import AlertAction, AlertState, Severity
from processing.alerts.sink import transition_alert

__all__ = ["router"]

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

StateFilter = Literal["raised", "acknowledged", "cleared", "open"]
AlertIdPath = Annotated[DbId, Path()]
_OPEN: Final = (AlertState.RAISED, AlertState.ACKNOWLEDGED)
_ACTION_ERRORS: Final = errors(*WRITE)


def _states(requested: list[StateFilter] | None) -> list[AlertState] | None:
    if requested is None:
        return None
    states: set[AlertState] = set()
    for name in requested:
        states.update(_OPEN if name == "open" else (AlertState(name),))
    return sorted(states)


@router.get("", summary="Cảnh báo / Alerts", responses=errors(*READ))
async def get_alerts(
    conn: ConnDep,
    principal: PrincipalDep,
    state: Annotated[
        list[StateFilter] | None,
        Query(max_length=4, description="repeatable; 'open' = raised + acknowledged"),
    ] = None,
    min_severity: Severity | None = None,
    domain: Annotated[list[Domain] | None, Query(max_length=4, description="repeatable")] = None,
    station: Annotated[str | None, Query(pattern=STATION_PATTERN, max_length=63)] = None,
    since_event: Annotated[
        int | None,
        Query(ge=0, le=BIGINT_MAX, description="only alerts with an event after this id"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertListOut:
    """Alerts, newest first; a domain-scoped token sees only its domains.

    ``last_event_id`` is read before the list, so subscribing to the WebSocket ``alerts``
    channel with ``resume_from=last_event_id`` misses nothing.
    """
    last_event_id = await current_event_id(conn)
    severities = None
    if min_severity is not None:
        severities = [s for s in Severity if s.rank >= min_severity.rank]
    records = await list_alerts(
        conn,
        states=_states(state),
        severities=severities,
        domains=domain_names(principal.visible_domains(domain)),
        station=station,
        since_event=since_event,
        limit=limit,
    )
    return AlertListOut(
        alerts=[AlertOut.from_record(r) for r in records], last_event_id=last_event_id
    )


@router.get("/{alert_id}", summary="Chi tiết cảnh báo / Alert detail", responses=errors(*READ, 404))
async def get_alert_detail(
    conn: ConnDep, principal: PrincipalDep, alert_id: AlertIdPath
) -> AlertDetailOut:
    """One alert with its audit trail (oldest event first)."""
    return await _detail(conn, principal, alert_id)


async def _detail(conn: Conn, principal: Principal, alert_id: int) -> AlertDetailOut:
    record = await get_alert(conn, alert_id)
    if record is None or not principal.can_see(record.alert.domain):
        message_vi, message_en = f"Không có cảnh báo #{alert_id}", f"No alert {alert_id}"
        raise NotFoundError(message_vi, message_en)
    events = [AlertEventOut.from_event(e) for e in await events_of(conn, alert_id)]
    return AlertDetailOut(**AlertOut.from_record(record).model_dump(), events=events)


async def _act(
    conn: Conn, principal: Principal, alert_id: int, action: AlertAction, note: str | None
) -> ActionOut:
    event_id = await transition_alert(
        conn, alert_id, action, actor=principal.name, note=note, can_see=principal.can_see
    )
    record = await get_alert(conn, alert_id)
    events = await events_by_ids(conn, [event_id])
    if record is None or not events:  # pragma: no cover - written just now
        message_vi, message_en = f"Không có cảnh báo #{alert_id}", f"No alert {alert_id}"
        raise NotFoundError(message_vi, message_en)
    return ActionOut(alert=AlertOut.from_record(record), event=AlertEventOut.from_event(events[0]))


@router.post(
    "/{alert_id}/acknowledge",
    summary="Xác nhận / Acknowledge",
    responses=_ACTION_ERRORS,
)
async def acknowledge(
    conn: ConnDep,
    principal: OperatorWriteDep,
    alert_id: AlertIdPath,
    body: Annotated[ActionIn | None, Body()] = None,
) -> ActionOut:
    """Acknowledge: raised -> acknowledged (operator role)."""
    note = None if body is None else body.note
    return await _act(conn, principal, alert_id, AlertAction.ACKNOWLEDGED, note)


@router.post("/{alert_id}/clear", summary="Đóng / Clear", responses=_ACTION_ERRORS)
async def clear(
    conn: ConnDep,
    principal: OperatorWriteDep,
    alert_id: AlertIdPath,
    body: Annotated[ActionIn | None, Body()] = None,
) -> ActionOut:
    """Clear: raised or acknowledged -> cleared (operator role)."""
    note = None if body is None else body.note
    return await _act(conn, principal, alert_id, AlertAction.CLEARED, note)


@router.post("/{alert_id}/comment", summary="Ghi chú / Comment", responses=_ACTION_ERRORS)
async def comment(
    conn: ConnDep, principal: OperatorWriteDep, alert_id: AlertIdPath, body: CommentIn
) -> ActionOut:
    """Add a note to the audit trail, in any state (operator role)."""
    return await _act(conn, principal, alert_id, AlertAction.COMMENTED, body.note)
