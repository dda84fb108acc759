"""Quarantine listing and replay (re-ingest after a fix, e.g. a newly registered station)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from db import Conn, StrategyName, load_registry, strategy_for, upgrade
from ingest.writer import Writer, configure_connection
from stream.batcher import Batch
from stream.consumer import RawMessage
from stream.validate import Validator

__all__ = ["QuarantineRow", "ReplayResult", "list_quarantine", "replay_quarantine"]


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """One quarantined message (or part of one) as stored."""

    quarantine_id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    station_id: str | None
    readings: int
    replayed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did."""

    messages: int
    stored: int
    duplicates: int
    still_quarantined: int


async def list_quarantine(
    conn: Conn, *, reason: str | None = None, limit: int = 50, include_replayed: bool = False
) -> list[QuarantineRow]:
    """Most recent quarantine rows first."""
    cur = await conn.execute(
        """SELECT quarantine_id, received_at, topic, reason, detail, station_id, readings,
                  replayed_at
           FROM quarantine
           WHERE (%(reason)s::text IS NULL OR reason = %(reason)s)
             AND (%(all)s OR replayed_at IS NULL)
           ORDER BY quarantine_id DESC LIMIT %(limit)s""",
        {"reason": reason, "all": include_replayed, "limit": limit},
    )
    return [QuarantineRow(*row) for row in await cur.fetchall()]


async def replay_quarantine(
    database_url: str,
    *,
    root: str,
    reason: str | None = None,
    max_age_days: float = 400.0,
    max_future_s: float = 300.0,
    forced: StrategyName | None = None,
) -> ReplayResult:
    """Re-validate unreplayed quarantined messages with today's registry and write them.

    The accepted time window is the services' (``MAX_AGE_DAYS``, ``MAX_FUTURE_S``).

    Each distinct message is replayed once; its quarantine rows are marked with the outcome,
    and whatever is still refused is quarantined again (with the new reason). Only ingest's
    rows whose payload was kept whole can be replayed; a row holding a prefix only is marked
    as such and left.
    """
    strategy_name, _ = await upgrade(database_url, forced)
    pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
        database_url, min_size=1, max_size=2, configure=configure_connection, open=False
    )
    async with pool:
        async with pool.connection() as conn:
            registry = await load_registry(conn)
            await conn.execute(
                """UPDATE quarantine SET replayed_at = now(), replay_outcome = CASE
                          WHEN service <> 'ingest' THEN 'not replayed: recorded by ' || service
                          ELSE 'not replayable: only a prefix of the message is kept' END
                   WHERE replayed_at IS NULL AND (%s::text IS NULL OR reason = %s)
                     AND (payload_size > length(payload) OR topic_size > octet_length(topic)
                          OR service <> 'ingest')""",
                (reason, reason),
            )
            await conn.commit()
            cur = await conn.execute(
                """SELECT topic, payload, received_at, client_id, array_agg(quarantine_id)
                   FROM quarantine
                   WHERE replayed_at IS NULL AND (%s::text IS NULL OR reason = %s)
                   GROUP BY topic, payload, received_at, client_id
                   ORDER BY min(quarantine_id)""",
                (reason, reason),
            )
            messages = await cur.fetchall()
            await conn.commit()
        validator = Validator(
            registry, root=root, max_age_s=max_age_days * 86400, max_future_s=max_future_s
        )
        writer = Writer(pool, strategy_for(strategy_name))
        totals = [0, 0, 0]
        for topic, payload, received_at, client, ids in messages:
            raw = RawMessage(topic, bytes(payload), 0, 0, received_at, 0, client)
            outcome = validator.check(raw)
            async with pool.connection() as conn:  # first: a refusal again is a new row
                await conn.execute(
                    "UPDATE quarantine SET replayed_at = now(), replay_outcome = 'replaying' "
                    "WHERE quarantine_id = ANY(%s)",
                    (ids,),
                )
            result = await writer.write(Batch([outcome], len(outcome.rows)))
            totals[0] += result.stored
            totals[1] += result.duplicates
            totals[2] += result.quarantined
            verdict = (
                f"stored {result.stored}, duplicates {result.duplicates}, "
                f"quarantined again {result.quarantined}"
            )
            async with pool.connection() as conn:
                await conn.execute(
                    "UPDATE quarantine SET replayed_at = now(), replay_outcome = %s "
                    "WHERE quarantine_id = ANY(%s)",
                    (verdict, ids),
                )
    return ReplayResult(len(messages), *totals)
