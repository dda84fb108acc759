"""Service heartbeats: each instance's liveness and counters, one row per instance.

The ops API's ``/health`` and ``/metrics`` and the Grafana operations board read
``service_heartbeats``; ingest and processing write it every few seconds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from db.types import Pool

__all__ = ["Stats", "heartbeat"]

Stats = dict[str, float | int | str]
"""A counter snapshot, as a service's ``stats()`` gives it."""


async def heartbeat(
    pool: Pool, service: str, instance: str, started_at: datetime, stats: Stats
) -> None:
    """Record that a service instance is alive, with its counters."""
    async with pool.connection() as conn:
        await conn.execute(
            """INSERT INTO service_heartbeats (service, instance, started_at, seen_at, stats)
               VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (service, instance) DO UPDATE SET
                 started_at = excluded.started_at, seen_at = excluded.seen_at,
                 stats = excluded.stats""",
            (service, instance, started_at, datetime.now(UTC), json.dumps(stats)),
        )
