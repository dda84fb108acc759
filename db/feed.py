"""The reading feed (migration 0012): stored readings in commit order, for processing.

Writers (ingest) call :func:`append` as the last step of a transaction that stored readings;
consumers (processing) :func:`read_after` their durable position and :func:`advance` it in
the same transaction as what they decided. Numbers are committed in order and without gaps
(the ``feed_head`` row lock is held from :func:`append` to commit), so "everything after my
position" is exactly what a consumer has not decided yet.

Rows travel as three packed columns (float64 epoch seconds, int32 storage keys, float64
values, little-endian): a batch is one row, written from and read into numpy arrays without
converting element by element (psycopg's array dumper costs ~2 µs a reading, more than the
rest of ingest's write).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from db.types import Conn

__all__ = [
    "FeedBatch",
    "FeedLag",
    "advance",
    "append",
    "lag",
    "oldest",
    "position",
    "prune",
    "read_after",
]

_NEXT: Final = "UPDATE feed_head SET seq = seq + 1 RETURNING seq"
_APPEND: Final = """
INSERT INTO reading_feed (seq, received_at, readings, times, sensor_keys, values_)
VALUES (%s, %s, %s, %b, %b, %b)"""
_F8: Final = np.dtype("<f8")
_I4: Final = np.dtype("<i4")
_READ: Final = """
SELECT seq, committed_at, received_at, times, sensor_keys, values_ FROM reading_feed
WHERE seq > %s ORDER BY seq LIMIT %s"""
_ADVANCE: Final = """
INSERT INTO feed_positions (consumer, seq, updated_at) VALUES (%s, %s, now())
ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, updated_at = now()
WHERE feed_positions.seq < excluded.seq"""
_LAG: Final = """
SELECT (SELECT seq FROM feed_head),
       coalesce(sum(readings), 0)::bigint,
       extract(epoch FROM now() - min(committed_at))::float8,
       min(seq)
FROM reading_feed WHERE seq > %s"""
_OLDEST: Final = "SELECT min(seq) FROM reading_feed"
_PRUNE: Final = """
DELETE FROM reading_feed
WHERE seq <= coalesce((SELECT min(seq) FROM feed_positions), 0)
   OR committed_at < now() - make_interval(secs => %s)"""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """One committed batch of stored readings.

    Args:
        seq: its number in commit order.
        committed_at: when it was appended (database clock).
        received_at: when the first message of the batch reached ingest.
        times_s: measurement times, epoch seconds.
        sensor_keys: the sensors' storage keys (:attr:`contract.Registry.keys`).
        values: the values, in each quantity's canonical unit.
    """

    seq: int
    committed_at: datetime
    received_at: datetime
    times_s: FloatArray
    sensor_keys: IntArray
    values: FloatArray

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class FeedLag:
    """How far a consumer is behind the feed.

    Args:
        head: the newest number in the feed.
        position: the consumer's position.
        readings: stored readings it has not decided yet.
        seconds: age of the oldest batch it has not decided (0 when caught up).
        gap: numbers after its position that are gone (pruned before it read them).
    """

    head: int
    position: int
    readings: int
    seconds: float
    gap: int


async def append(
    conn: Conn,
    received_at: datetime,
    times: Sequence[datetime],
    sensor_keys: Sequence[int],
    values: Sequence[float],
) -> int:
    """Append stored readings under the next number; call last, inside the transaction.

    Returns:
        The batch's number.
    """
    cur = await conn.execute(_NEXT)
    row = await cur.fetchone()
    if row is None:  # pragma: no cover - the migration inserts the one row
        msg = "feed_head is empty"
        raise LookupError(msg)
    seq = int(row[0])
    packed = (
        np.array([t.timestamp() for t in times], dtype=_F8).tobytes(),
        np.array(sensor_keys, dtype=_I4).tobytes(),
        np.array(values, dtype=_F8).tobytes(),
    )
    await conn.execute(_APPEND, (seq, received_at, len(times), *packed))
    await conn.execute("NOTIFY reading_feed")  # delivered at commit: consumers wake then
    return seq


async def read_after(conn: Conn, after: int, limit: int) -> list[FeedBatch]:
    """The batches after number ``after``, in order, at most ``limit`` of them."""
    cur = await conn.execute(_READ, (after, limit), binary=True)  # bytea without hex
    return [
        FeedBatch(
            int(seq), committed, received,
            np.frombuffer(times, dtype=_F8).astype(np.float64, copy=False),
            np.frombuffer(keys, dtype=_I4).astype(np.int32, copy=False),
            np.frombuffer(values, dtype=_F8).astype(np.float64, copy=False),
        )
        for seq, committed, received, times, keys, values in await cur.fetchall()
    ]  # fmt: skip


async def position(conn: Conn, consumer: str) -> int | None:
    """A consumer's durable position (None: it never consumed)."""
    cur = await conn.execute("SELECT seq FROM feed_positions WHERE consumer = %s", (consumer,))
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def advance(conn: Conn, consumer: str, seq: int) -> None:
    """Move a consumer's position forward (in the transaction of what it decided)."""
    await conn.execute(_ADVANCE, (consumer, seq))


async def lag(conn: Conn, after: int) -> FeedLag:
    """How far behind the feed a consumer at position ``after`` is."""
    cur = await conn.execute(_LAG, (after,))
    row = await cur.fetchone()
    head, readings, seconds, first = row if row is not None else (after, 0, None, None)
    gap = 0 if first is None else max(0, int(first) - after - 1)
    return FeedLag(int(head), after, int(readings), float(seconds or 0.0), gap)


async def oldest(conn: Conn) -> int | None:
    """The oldest number still in the feed (None: empty)."""
    cur = await conn.execute(_OLDEST)
    row = await cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


async def prune(conn: Conn, retention_s: float) -> int:
    """Drop batches every consumer has passed, and any older than ``retention_s``."""
    cur = await conn.execute(_PRUNE, (retention_s,))
    return max(cur.rowcount, 0)
