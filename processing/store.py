"""Processing's own rows other than alerts: index values and the detector snapshot.

(Alert rows have one writer, :mod:`processing.alerts.sink`.)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from db import Conn
from processing.derived import IndexRow

__all__ = ["load_snapshot", "save_snapshot", "store_indices"]

_UPSERT: Final = """
INSERT INTO indices (time, station_id, index, value, level, dominant, details)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (time, station_id, index) DO UPDATE SET
    value = excluded.value, level = excluded.level, dominant = excluded.dominant,
    details = excluded.details"""


async def store_indices(conn: Conn, rows: list[IndexRow]) -> None:
    """Upsert index rows (inside the caller's transaction)."""
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany(
                _UPSERT,
                [
                    (r.time, r.station_id, r.index, r.value, r.level, r.dominant,
                     json.dumps(r.details))
                    for r in rows
                ],
            )  # fmt: skip


async def load_snapshot(conn: Conn, instance: str) -> tuple[bytes, datetime, int | None] | None:
    """The detector snapshot an instance saved last, when, and its feed position."""
    cur = await conn.execute(
        "SELECT state, saved_at, position FROM processing_state WHERE instance = %s",
        (instance,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return bytes(row[0]), row[1], None if row[2] is None else int(row[2])


async def save_snapshot(
    conn: Conn, instance: str, version: int, state: bytes, position: int
) -> None:
    """Replace an instance's detector snapshot (taken at feed ``position``)."""
    await conn.execute(
        """INSERT INTO processing_state (instance, saved_at, version, state, position)
           VALUES (%s, now(), %s, %s, %s)
           ON CONFLICT (instance) DO UPDATE SET
             saved_at = excluded.saved_at, version = excluded.version,
             state = excluded.state, position = excluded.position""",
        (instance, version, state, position),
    )
