"""History with server-side downsampling, and official index values."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Query

from contract import display_unit, now_utc
from ops_api.deps import ConnDep, PrincipalDep, SettingsDep
from ops_api.errors import NotFoundError
from ops_api.history import HistoryPlan, HistoryPointRow, fetch_history
from ops_api.params import ApiDatetime, shift
from ops_api.queries import find_sensor, list_indices
from ops_api.responses import READ, errors
from ops_api.routes.stations import StationsQuery, domain_names
from ops_api.schemas import HistoryOut, HistoryPointOut, IndexOut

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["readings"])

_SENSOR: Final = r"^[a-z0-9][a-z0-9-]{1,62}\.[a-z0-9_]{1,64}$"
_DEFAULT_SPAN_S: Final = 24 * 3600.0
MAX_POINTS: Final = 100_000
FromQuery = Annotated[
    ApiDatetime | None,
    Query(alias="from", description="ISO 8601 with offset; default to - 24 h"),
]
ToQuery = Annotated[
    ApiDatetime | None,
    Query(alias="to", description="ISO 8601 with offset; default now. from >= to: nothing"),
]


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or now_utc()
    start = start or shift(end, -_DEFAULT_SPAN_S)
    return start, end


@router.get(
    "/history",
    summary="Chuỗi số liệu / History (downsampled)",
    responses=errors(*READ, 404),
)
async def get_history(
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    sensor: Annotated[
        str, Query(pattern=_SENSOR, max_length=128, description="<station>.<quantity>")
    ],
    start: FromQuery = None,
    end: ToQuery = None,
    max_points: Annotated[
        int | None,
        Query(
            ge=2,
            le=MAX_POINTS,
            description="default 500; more than the server's history_max_points (5000) is "
            "reduced to it (the response says how many were used)",
        ),
    ] = None,
) -> HistoryOut:
    """A sensor's values in ``[from, to)``, at most ``max_points`` points.

    Short ranges return raw readings; longer ones are bucketed from raw readings, the 1-minute
    or the 1-hour rollup so that no more than ``max_points`` buckets come back (each with
    mean, min, max and count). An empty range (``from >= to``) has no points.
    """
    points = min(max_points or settings.history_default_points, settings.history_max_points)
    start, end = _window(start, end)
    station, quantity = sensor.rsplit(".", 1)
    row = await find_sensor(conn, station, quantity)
    if row is None or not principal.can_see(row.domain):
        message_vi, message_en = f"Không có cảm biến {sensor}", f"No sensor {sensor}"
        raise NotFoundError(message_vi, message_en)
    rows: list[HistoryPointRow] = []
    if start >= end:
        plan = HistoryPlan("raw", None)
    else:
        plan, rows = await fetch_history(conn, row, start, end, points)
    return HistoryOut(
        sensor=sensor,
        unit=row.unit,
        unit_display=display_unit(row.unit, row.interval_s),
        start=start,
        end=end,
        max_points=points,
        source=plan.source,
        bucket_s=plan.bucket_s,
        points=[HistoryPointOut.from_row(r) for r in rows],
    )


@router.get(
    "/indices",
    summary="Chỉ số (VN_AQI, ...) / Indices",
    responses=errors(*READ),
)
async def get_indices(
    conn: ConnDep,
    principal: PrincipalDep,
    station: StationsQuery = None,
    index: Annotated[
        str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$", description="e.g. VN_AQI")
    ] = None,
    start: FromQuery = None,
    end: ToQuery = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[IndexOut]:
    """Index values in ``[from, to)``, newest first (an empty range has none)."""
    start, end = _window(start, end)
    if start >= end:
        return []
    rows = await list_indices(
        conn,
        stations=station,
        domains=domain_names(principal.scope_domains),
        index=index,
        start=start,
        end=end,
        limit=limit,
    )
    return [IndexOut.from_row(r) for r in rows]
