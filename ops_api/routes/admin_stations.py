"""Admin: stations and sensors — added, changed, moved and retired (each change audited)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path, Response

from contract import PayloadError
from ops_api.admin_schemas import SensorDocOut, StationDocOut, StationIn
from ops_api.deps import AdminDep, AdminWriteDep, ConnDep
from ops_api.errors import InvalidRequestError, NotFoundError
from ops_api.params import STATION_PATTERN
from ops_api.provisioning import StationDoc, decode_station, list_station_docs, put_station, retire
from ops_api.responses import ADMIN, errors

__all__ = ["router"]

router = APIRouter(prefix="/api/admin/stations", tags=["admin"])

StationIdPath = Annotated[str, Path(pattern=STATION_PATTERN, max_length=63)]
_CREATED: Final = {"model": StationDocOut, "description": "a new station was registered"}


def _out(doc: StationDoc, retired_sensors: list[str] | None = None) -> StationDocOut:
    st = doc.station
    return StationDocOut(
        station_id=st.station_id,
        domain=st.domain,
        name=st.name,
        district=st.district,
        lat=st.lat,
        lon=st.lon,
        kind=st.kind,
        sensors=[
            SensorDocOut(
                quantity=s.quantity,
                interval_s=s.interval_s,
                valid_min=s.valid_min,
                valid_max=s.valid_max,
            )
            for s in st.sensors
        ],
        attributes=dict(st.attributes),
        retired_at=doc.retired_at,
        retired_sensors=retired_sensors or [],
    )


@router.get("", summary="Danh mục trạm / The registry", responses=errors(*ADMIN))
async def get_registry(conn: ConnDep, _admin: AdminDep) -> list[StationDocOut]:
    """Every station in the registry file's format, retired ones included."""
    return [_out(doc) for doc in await list_station_docs(conn)]


@router.put(
    "/{station_id}",
    summary="Thêm hoặc sửa trạm / Add, change or move a station",
    responses={201: _CREATED, **errors(*ADMIN)},
)
async def put_one_station(
    conn: ConnDep,
    admin: AdminWriteDep,
    station_id: StationIdPath,
    body: StationIn,
    response: Response,
) -> StationDocOut:
    """Register a station with exactly these sensors (the registry file's format).

    201 when it is new; 200 when it existed (changed, moved, or reactivated if retired).
    Sensors it had and that are not listed are retired.
    """
    try:
        station = decode_station(station_id, body.model_dump(mode="json"))
    except PayloadError as exc:
        msg = "Trạm không hợp lệ"
        raise InvalidRequestError(msg, f"Invalid station: {exc}") from None
    result = await put_station(conn, station, actor=admin.name)
    response.status_code = 201 if result.created else 200
    (doc,) = await list_station_docs(conn, station_id)
    return _out(doc, result.retired_sensors)


@router.get(
    "/{station_id}", summary="Một trạm (danh mục) / One station", responses=errors(*ADMIN, 404)
)
async def get_one_station(
    conn: ConnDep, _admin: AdminDep, station_id: StationIdPath
) -> StationDocOut:
    """One station in the registry file's format."""
    docs = await list_station_docs(conn, station_id)
    if not docs:
        msg = f"Không có trạm {station_id}"
        raise NotFoundError(msg, f"No station {station_id}")
    return _out(docs[0])


@router.delete(
    "/{station_id}",
    status_code=204,
    summary="Ngừng trạm / Retire a station",
    responses=errors(*ADMIN, 404),
)
async def delete_station(
    conn: ConnDep, admin: AdminWriteDep, station_id: StationIdPath
) -> Response:
    """Retire a station and its sensors: history stays, new messages are refused."""
    if not await retire(conn, station_id, actor=admin.name):
        msg = f"Không có trạm đang hoạt động {station_id}"
        raise NotFoundError(msg, f"No active station {station_id}")
    return Response(status_code=204)
