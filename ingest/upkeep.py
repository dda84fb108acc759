"""Ingest's upkeep: partitions ahead, rollups, retention, and stations gone stale.

Run at start and every ``maintenance_interval_s``; it also drops quarantine rows and counts
past their retention (``quarantine_retention_days``), one of the quarantine's bounds. What a
strategy does (partitions and rollups on plain PostgreSQL; TimescaleDB's late ranges and
policy jobs) is :mod:`db.strategies`' business; staleness is decided here with the one rule
of :class:`contract.StaleRule` (the ops API shows stations by the same rule): a station
whose newest reading arrived longer ago than the rule allows for its shortest reporting
interval is recorded ``stale`` in ``sensor_status``, once, and ``online`` again when data
resumes. The reading feed is pruned of what every consumer has decided, and of batches
older than its retention.
"""

from __future__ import annotations

import logging
from typing import Final

from contract import StaleRule
from db import Conn, Strategy, feed, purge_quarantine
from ingest.writer import Writer, stale_stations

__all__ = ["Upkeep"]

logger = logging.getLogger(__name__)

_STALE: Final = """
INSERT INTO sensor_status (station_id, at, state, reason)
SELECT s.station_id, now(), 'stale',
       format('no data for %%s s / không có dữ liệu', round(extract(epoch FROM now() - s.last)))
FROM (SELECT station_id, max(l.received_at) AS last, min(interval_s) AS interval_s
      FROM sensors JOIN latest l USING (sensor_id) GROUP BY station_id) s
LEFT JOIN station_state st USING (station_id)
WHERE s.last < now() - make_interval(secs => greatest(%(min_s)s, s.interval_s * %(factor)s))
  AND coalesce(st.state, 'online') = 'online'
ON CONFLICT DO NOTHING"""


class Upkeep:
    """Periodic upkeep of the readings store.

    Args:
        strategy: the storage strategy in force.
        retention_days: readings older than this are dropped.
        stale_rule: when a station counts as stale.
        quarantine_retention_days: quarantine rows and counts older than this are dropped.
    """

    def __init__(
        self,
        strategy: Strategy,
        retention_days: int,
        stale_rule: StaleRule,
        quarantine_retention_days: float = 30.0,
        *,
        feed_retention_s: float = 86400.0,
    ) -> None:
        self._strategy = strategy
        self._retention_days = retention_days
        self._stale = stale_rule
        self._feed_retention_s = feed_retention_s
        self.feed_pruned = 0
        self._quarantine_days = quarantine_retention_days

    async def run(self, conn: Conn, writer: Writer) -> str:
        """One round; tells ``writer`` which stations are stale now. Returns a summary."""
        summary = await self._strategy.maintain(conn, self._retention_days)
        params = {"min_s": self._stale.stale_min_s, "factor": self._stale.stale_factor}
        cur = await conn.execute(_STALE, params)
        if cur.rowcount:
            logger.info("%d station(s) became stale", cur.rowcount)
        writer.stale = await stale_stations(conn)  # (including those another instance marked)
        dropped = await purge_quarantine(conn, self._quarantine_days)
        if dropped:
            logger.info("%d quarantine row(s) past retention dropped", dropped)
        self.feed_pruned += await feed.prune(conn, self._feed_retention_s)
        await conn.commit()
        logger.debug("maintenance: %s", summary)
        return summary
