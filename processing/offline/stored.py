"""Reading one sensor's stored series from the database, streamed (the I/O of the backtest).

The series comes through a psycopg *server-side* cursor in time order, ``chunk`` rows at a
time, so a year of one-minute readings never sits in memory at once and the backtest can
score each point before the next chunk is even fetched.

>>> parse_sensor("fd-thai-ha.water_depth")
('fd-thai-ha', <Quantity.WATER_DEPTH: 'water_depth'>)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import psycopg

from contract import Quantity, StationId
from processing.errors import DataError

__all__ = ["parse_sensor", "stream_series"]

FloatArray = npt.NDArray[np.float64]

_SERIES: Final = """
SELECT extract(epoch FROM r.time)::float8, r.value
FROM readings r JOIN sensors s USING (sensor_id)
WHERE s.station_id = %(station)s AND s.quantity = %(quantity)s
  AND (%(since)s::timestamptz IS NULL OR r.time >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR r.time < %(until)s)
ORDER BY r.time"""
_KNOWN: Final = "SELECT 1 FROM sensors WHERE station_id = %s AND quantity = %s"


def parse_sensor(text: str) -> tuple[StationId, Quantity]:
    """``<station>.<quantity>`` into its parts.

    Raises:
        DataError: when there is no dot or the quantity is unknown.
    """
    station, dot, quantity = text.strip().rpartition(".")
    if not dot or not station:
        msg = f"sensor {text!r} is not <station>.<quantity>"
        raise DataError(msg)
    try:
        return StationId(station), Quantity(quantity)
    except ValueError:
        known = ", ".join(q.value for q in Quantity)
        msg = f"unknown quantity {quantity!r} in {text!r}; known: {known}"
        raise DataError(msg) from None


def stream_series(
    database_url: str,
    sensor: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk: int = 5000,
) -> Iterator[tuple[FloatArray, FloatArray]]:
    """Yield ``(epoch seconds, values)`` chunks of a stored series, oldest first.

    Args:
        database_url: libpq URL.
        sensor: ``<station>.<quantity>``.
        since: first measurement time included (tz-aware), or None.
        until: first measurement time excluded (tz-aware), or None.
        chunk: rows fetched per round trip.

    Raises:
        DataError: for an unknown sensor or naive times.
        psycopg.Error: when the database cannot be read.
    """
    for moment in (since, until):
        if moment is not None and moment.utcoffset() is None:
            msg = "since/until must be tz-aware"
            raise DataError(msg)
    station, quantity = parse_sensor(sensor)
    with psycopg.connect(database_url) as conn:
        if conn.execute(_KNOWN, (station, quantity.value)).fetchone() is None:
            msg = f"no sensor {sensor!r} in the registry"
            raise DataError(msg)
        # A named cursor lives on the server: rows arrive ``chunk`` at a time.
        with conn.cursor(name="backtest_series") as cur:
            cur.itersize = chunk
            cur.execute(
                _SERIES,
                {"station": station, "quantity": quantity.value, "since": since, "until": until},
            )
            while rows := cur.fetchmany(chunk):
                data = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
                yield data[:, 0].copy(), data[:, 1].copy()
