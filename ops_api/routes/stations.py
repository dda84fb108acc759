"""Stations as GeoJSON, one station in detail, and the latest values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Path, Query
from pydantic import StringConstraints

from contract import Domain, now_utc
from db import Conn
from ops_api.auth import Principal
from ops_api.deps import AppState, ConnDep, PrincipalDep, StateDep
from ops_api.errors import NotFoundError
from ops_api.params import LABEL_PATTERN, QUANTITY_PATTERN, STATION_PATTERN
from ops_api.queries import (
    StationRow,
    list_latest,
    list_sensors,
    list_stations,
    list_status_history,
    station_indices,
)
from ops_api.responses import READ, errors
from ops_api.schemas import (
    Feature,
    IndexValueOut,
    LatestOut,
    LatestValueOut,
    PointGeometry,
    SensorOut,
    StationCollection,
    StationDetailProperties,
    StationProperties,
    StatusChangeOut,
)
from processing.alerts import Severity

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["stations"])

_STATUS_HISTORY: Final = 20
MAX_FILTER_ITEMS: Final = 50
DomainsQuery = Annotated[
    list[Domain] | None,
    Query(max_length=4, description="repeat for several: ?domain=air&domain=flood"),
]
StationItem = Annotated[str, StringConstraints(pattern=STATION_PATTERN, max_length=63)]
QuantityItem = Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN, max_length=64)]
StationsQuery = Annotated[
    list[StationItem] | None,
    Query(max_length=MAX_FILTER_ITEMS, description="repeatable station id"),
]
QuantitiesQuery = Annotated[
    list[QuantityItem] | None,
    Query(max_length=MAX_FILTER_ITEMS, description="repeatable quantity"),
]


def domain_names(domains: frozenset[Domain] | None) -> list[str] | None:
    """Domains as SQL parameters (``None``: no filter)."""
    return None if domains is None else sorted(d.value for d in domains)


@router.get("/stations", summary="Trạm đo / Stations (GeoJSON)", responses=errors(*READ))
async def get_stations(
    conn: ConnDep,
    state: StateDep,
    principal: PrincipalDep,
    domain: DomainsQuery = None,
    district: Annotated[str | None, Query(max_length=100, pattern=LABEL_PATTERN)] = None,
) -> StationCollection:
    """Every visible station as a GeoJSON Feature: state, latest values, indices, alerts."""
    rows = await list_stations(conn, domains=domain_names(principal.visible_domains(domain)))
    if district is not None:
        rows = [r for r in rows if r.district == district]
    properties = await _properties(conn, state, rows)
    features = [_feature(row, props) for row, props in zip(rows, properties, strict=True)]
    return StationCollection(features=features, generated_at=now_utc())


@router.get(
    "/stations/{station_id}",
    summary="Một trạm / One station",
    responses=errors(*READ, 404),
)
async def get_station(
    conn: ConnDep,
    state: StateDep,
    principal: PrincipalDep,
    station_id: Annotated[str, Path(pattern=STATION_PATTERN, max_length=63)],
) -> Feature[StationDetailProperties]:
    """One station with its sensors and recent status transitions."""
    row = await _visible_station(conn, principal, station_id)
    (props,) = await _properties(conn, state, [row])
    sensors = [SensorOut.from_row(s) for s in await list_sensors(conn, station_id)]
    history = await list_status_history(conn, station_id, _STATUS_HISTORY)
    detail = StationDetailProperties(
        **props.model_dump(),
        sensors=sensors,
        status_history=[StatusChangeOut.from_row(h) for h in history],
    )
    return Feature[StationDetailProperties](
        id=row.station_id, geometry=PointGeometry(coordinates=(row.lon, row.lat)), properties=detail
    )


@router.get("/latest", summary="Giá trị mới nhất / Latest values", responses=errors(*READ))
async def get_latest(
    conn: ConnDep,
    principal: PrincipalDep,
    domain: DomainsQuery = None,
    station: StationsQuery = None,
    quantity: QuantitiesQuery = None,
) -> list[LatestOut]:
    """The newest value of every matching sensor (by measurement time)."""
    rows = await list_latest(
        conn,
        domains=domain_names(principal.visible_domains(domain)),
        stations=station,
        quantities=quantity,
    )
    return [LatestOut.from_row(r) for r in rows]


async def _visible_station(conn: Conn, principal: Principal, station_id: str) -> StationRow:
    rows = await list_stations(conn, station=station_id)
    if not rows or not principal.can_see(rows[0].domain):
        message_vi, message_en = f"Không có trạm {station_id}", f"No station {station_id}"
        raise NotFoundError(message_vi, message_en)
    return rows[0]


async def _properties(
    conn: Conn, state: AppState, rows: Sequence[StationRow]
) -> list[StationProperties]:
    ids = [r.station_id for r in rows]
    if not ids:
        return []
    latest: dict[str, list[LatestValueOut]] = defaultdict(list)
    for lr in await list_latest(conn, stations=ids):
        latest[lr.station_id].append(LatestValueOut.from_row(lr))
    indices: dict[str, list[IndexValueOut]] = defaultdict(list)
    window = timedelta(seconds=state.settings.indices_window_s)
    for ir in await station_indices(conn, ids, window):
        indices[ir.station_id].append(IndexValueOut.from_row(ir))
    now = now_utc()
    rule = state.stale_rule
    return [
        StationProperties(
            station_id=r.station_id,
            name=r.name,
            domain=Domain(r.domain),
            district=r.district,
            kind=r.kind,
            state=rule.state(
                r.reported_state, r.state_since, r.last_received, r.min_interval_s, now
            ),
            reported_state=r.reported_state,
            state_since=r.state_since,
            state_reason=r.state_reason,
            last_received=r.last_received,
            last_measured=r.last_measured,
            open_alerts=r.open_alerts,
            max_open_severity=None
            if r.max_open_severity is None
            else Severity(r.max_open_severity),
            latest=latest[r.station_id],
            indices=indices[r.station_id],
            attributes=r.attributes,
        )
        for r in rows
    ]


def _feature(row: StationRow, props: StationProperties) -> Feature[StationProperties]:
    return Feature[StationProperties](
        id=row.station_id, geometry=PointGeometry(coordinates=(row.lon, row.lat)), properties=props
    )
