"""Nearest neighbours of sensors on the map, per group (pure; the neighbours lane's table)."""

from __future__ import annotations

from typing import Final

import numpy as np
from scipy.spatial import cKDTree

from processing.detectors._private import FloatArray, IntArray

__all__ = ["neighbour_table"]

_KM_PER_DEG_LAT: Final = 110.574
_KM_PER_DEG_LON_EQUATOR: Final = 111.320


def neighbour_table(
    lat_deg: FloatArray, lon_deg: FloatArray, group: FloatArray, k: int, radius_km: float
) -> IntArray:
    """Each slot's ``k`` nearest slots of its group within ``radius_km`` (-1: none).

    Slots without a position (NaN) have no neighbours and are nobody's. Distances are on a
    local equirectangular projection per group (a city is small).

    >>> lat = np.array([21.0, 21.001, 21.003, 21.5])
    >>> neighbour_table(lat, np.full(4, 105.8), np.zeros(4), 2, 5.0).tolist()
    [[1, 2], [0, 2], [1, 0], [-1, -1]]
    """
    table = np.full((lat_deg.shape[0], k), -1, dtype=np.intp)
    placed = np.flatnonzero(np.isfinite(lat_deg) & np.isfinite(lon_deg))
    for g in np.unique(group[placed]):
        members = placed[group[placed] == g]
        if members.size < 2:
            continue
        lat0 = float(np.mean(lat_deg[members]))
        xy = np.column_stack(
            [
                lon_deg[members] * _KM_PER_DEG_LON_EQUATOR * np.cos(np.radians(lat0)),
                lat_deg[members] * _KM_PER_DEG_LAT,
            ]
        )
        count = min(k + 1, members.size)
        _, found = cKDTree(xy).query(xy, k=count, distance_upper_bound=radius_km)
        found = np.asarray(found).reshape(members.size, count)[:, 1:]
        valid = found < members.size
        mapped = np.where(valid, members[np.minimum(found, members.size - 1)], -1)
        table[members, : mapped.shape[1]] = mapped
    return table
