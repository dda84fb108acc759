"""SQL reads of alerts and their audit trail (the writes are :mod:`processing.alerts.sink`'s).

An :class:`AlertRecord` is the stored :class:`~processing.alerts.Alert` plus what only the
row knows (when and by whom it was acknowledged or cleared, its newest event id). Every
operator action updates the ``alerts`` row and inserts its ``alert_events`` row in one
transaction; the table's trigger then announces the event to the live feed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from psycopg.rows import args_row, kwargs_row

from db import Conn
from processing.alerts import Alert, AlertAction, AlertEvent, AlertState, Category, Severity

__all__ = [
    "AlertRecord",
    "PublicVersions",
    "alerts_by_ids",
    "current_event_id",
    "events_after",
    "events_by_ids",
    "events_of",
    "first_events",
    "get_alert",
    "list_alerts",
    "public_alerts",
    "public_versions",
]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A stored alert with its lifecycle bookkeeping.

    Args:
        alert: the alert (``alert_id`` and ``state`` set).
        raised_at: when it was stored.
        updated_at: last change of the row.
        acknowledged_at: when an operator acknowledged it.
        acknowledged_by: who did.
        cleared_at: when it was cleared.
        cleared_by: who cleared it (an operator or the rule).
        escalation_level: how often it was escalated while unacknowledged.
        incident_id: the incident grouping it, if any.
        last_event_id: its newest audit-trail event.
    """

    alert: Alert
    raised_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
    cleared_by: str | None
    escalation_level: int
    incident_id: int | None
    last_event_id: int | None

    @property
    def alert_id(self) -> int:
        """The database id."""
        return self.alert.alert_id or 0


def _record(
    *,
    alert_id: int,
    dedup_key: str,
    rule: str,
    category: str,
    severity: str,
    state: str,
    station_id: str | None,
    quantity: str | None,
    domain: str | None,
    district: str | None,
    title_vi: str,
    title_en: str,
    message_vi: str,
    message_en: str,
    value: float | None,
    threshold: float | None,
    observed_at: datetime,
    details: dict[str, str | float | int | bool | None],
    raised_at: datetime,
    updated_at: datetime,
    acknowledged_at: datetime | None,
    acknowledged_by: str | None,
    cleared_at: datetime | None,
    cleared_by: str | None,
    escalation_level: int,
    incident_id: int | None,
    last_event_id: int | None,
) -> AlertRecord:
    alert = Alert(
        dedup_key=dedup_key,
        rule=rule,
        category=cast(Category, category),
        severity=Severity(severity),
        station_id=station_id,
        quantity=quantity,
        domain=domain,
        district=district,
        title_vi=title_vi,
        title_en=title_en,
        message_vi=message_vi,
        message_en=message_en,
        value=value,
        threshold=threshold,
        observed_at=observed_at,
        details=details,
        alert_id=alert_id,
        state=AlertState(state),
    )
    return AlertRecord(
        alert,
        raised_at,
        updated_at,
        acknowledged_at,
        acknowledged_by,
        cleared_at,
        cleared_by,
        escalation_level,
        incident_id,
        last_event_id,
    )


def _event(
    event_id: int,
    alert_id: int,
    at: datetime,
    action: str,
    actor: str,
    severity: str | None,
    value: float | None,
    note: str | None,
) -> AlertEvent:
    level = Severity(severity) if severity is not None else None
    return AlertEvent(event_id, alert_id, at, AlertAction(action), actor, level, value, note)


_ALERT_COLUMNS: Final = """
a.alert_id, a.dedup_key, a.rule, a.category, a.severity, a.state, a.station_id, a.quantity,
a.domain, a.district, a.title_vi, a.title_en, a.message_vi, a.message_en, a.value,
a.threshold, a.observed_at, a.details, a.raised_at, a.updated_at, a.acknowledged_at,
a.acknowledged_by, a.cleared_at, a.cleared_by, a.escalation_level, a.incident_id,
(SELECT max(e.event_id) FROM alert_events e WHERE e.alert_id = a.alert_id) AS last_event_id
"""
_EVENT_COLUMNS: Final = "event_id, alert_id, at, action, actor, severity, value, note"

_LIST: Final = f"""
SELECT {_ALERT_COLUMNS}
FROM alerts a
WHERE (%(states)s::text[] IS NULL OR a.state = ANY(%(states)s))
  AND (%(severities)s::text[] IS NULL OR a.severity = ANY(%(severities)s))
  AND (%(domains)s::text[] IS NULL OR a.domain = ANY(%(domains)s))
  AND (%(station)s::text IS NULL OR a.station_id = %(station)s)
  AND (%(since_event)s::bigint IS NULL OR EXISTS (
        SELECT 1 FROM alert_events e
        WHERE e.alert_id = a.alert_id AND e.event_id > %(since_event)s))
ORDER BY a.raised_at DESC, a.alert_id DESC
LIMIT %(limit)s
"""


async def list_alerts(
    conn: Conn,
    *,
    states: Sequence[AlertState] | None = None,
    severities: Sequence[Severity] | None = None,
    domains: Sequence[str] | None = None,
    station: str | None = None,
    since_event: int | None = None,
    limit: int = 100,
) -> list[AlertRecord]:
    """Alerts matching every given filter, newest first."""
    params = {
        "states": None if states is None else [s.value for s in states],
        "severities": None if severities is None else [s.value for s in severities],
        "domains": None if domains is None else list(domains),
        "station": station,
        "since_event": since_event,
        "limit": limit,
    }
    async with conn.cursor(row_factory=kwargs_row(_record)) as cur:
        await cur.execute(_LIST, params)
        return await cur.fetchall()


async def get_alert(conn: Conn, alert_id: int) -> AlertRecord | None:
    """One alert, or ``None``."""
    async with conn.cursor(row_factory=kwargs_row(_record)) as cur:
        await cur.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE a.alert_id = %s", [alert_id]
        )
        return await cur.fetchone()


async def alerts_by_ids(conn: Conn, alert_ids: Sequence[int]) -> dict[int, AlertRecord]:
    """Several alerts by id."""
    async with conn.cursor(row_factory=kwargs_row(_record)) as cur:
        await cur.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a WHERE a.alert_id = ANY(%s)", [list(alert_ids)]
        )
        return {record.alert_id: record for record in await cur.fetchall()}


async def current_event_id(conn: Conn) -> int:
    """The newest committed event id (0 when there is none)."""
    cur = await conn.execute("SELECT coalesce(max(event_id), 0) FROM alert_events")
    row = await cur.fetchone()
    return int(row[0]) if row is not None else 0


async def events_of(conn: Conn, alert_id: int) -> list[AlertEvent]:
    """The audit trail of one alert, oldest first."""
    async with conn.cursor(row_factory=args_row(_event)) as cur:
        await cur.execute(
            f"SELECT {_EVENT_COLUMNS} FROM alert_events WHERE alert_id = %s ORDER BY event_id",
            [alert_id],
        )
        return await cur.fetchall()


async def events_by_ids(conn: Conn, event_ids: Sequence[int]) -> list[AlertEvent]:
    """Events by id, in id order (ids not yet committed are simply absent)."""
    async with conn.cursor(row_factory=args_row(_event)) as cur:
        await cur.execute(
            f"SELECT {_EVENT_COLUMNS} FROM alert_events WHERE event_id = ANY(%s) ORDER BY event_id",
            [list(event_ids)],
        )
        return await cur.fetchall()


async def first_events(conn: Conn, alert_ids: Sequence[int]) -> dict[int, AlertEvent]:
    """The first event (normally ``raised``) of each alert."""
    async with conn.cursor(row_factory=args_row(_event)) as cur:
        await cur.execute(
            f"SELECT DISTINCT ON (alert_id) {_EVENT_COLUMNS} FROM alert_events "
            "WHERE alert_id = ANY(%s) ORDER BY alert_id, event_id",
            [list(alert_ids)],
        )
        return {event.alert_id: event for event in await cur.fetchall()}


async def events_after(conn: Conn, after_id: int, limit: int) -> list[AlertEvent]:
    """Up to ``limit`` events with ids above ``after_id``, in id order."""
    async with conn.cursor(row_factory=args_row(_event)) as cur:
        await cur.execute(
            f"SELECT {_EVENT_COLUMNS} FROM alert_events WHERE event_id > %s "
            "ORDER BY event_id LIMIT %s",
            [after_id, limit],
        )
        return await cur.fetchall()


_PUBLIC: Final = f"""
(SELECT {_ALERT_COLUMNS} FROM alerts a
 WHERE a.rule = ANY(%(rules)s) AND a.state <> 'cleared'
 ORDER BY a.raised_at DESC, a.alert_id DESC)
UNION ALL
(SELECT {_ALERT_COLUMNS} FROM alerts a
 WHERE a.rule = ANY(%(rules)s) AND a.state = 'cleared' AND a.cleared_at >= %(since)s
 ORDER BY a.cleared_at DESC, a.alert_id DESC
 LIMIT %(cleared_max)s)
"""


async def public_alerts(
    conn: Conn, rules: Sequence[str], *, cleared_since: datetime, cleared_max: int
) -> list[AlertRecord]:
    """Every open alert of ``rules``, whatever its age, then those cleared since a time.

    Filtered in SQL: an open alert is listed however many alerts were raised after it (the
    open ones are bounded by the rules' dedup keys: one per rule and station); the cleared
    ones are the ``cleared_max`` most recent at most.
    """
    params = {"rules": list(rules), "since": cleared_since, "cleared_max": cleared_max}
    async with conn.cursor(row_factory=kwargs_row(_record)) as cur:
        await cur.execute(_PUBLIC, params)
        return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class PublicVersions:
    """An alert's public versions: the events that changed what the public sees.

    Args:
        first: its first public event (the ``raised``).
        current: its newest one.
        previous: the one before the newest, if any.
    """

    first: AlertEvent
    current: AlertEvent
    previous: AlertEvent | None


_VERSIONS: Final = f"""
SELECT {_EVENT_COLUMNS} FROM (
    SELECT {_EVENT_COLUMNS},
           row_number() OVER (PARTITION BY alert_id ORDER BY event_id) AS oldest,
           row_number() OVER (PARTITION BY alert_id ORDER BY event_id DESC) AS newest
    FROM alert_events WHERE alert_id = ANY(%s) AND action = ANY(%s)) v
WHERE oldest = 1 OR newest <= 2
ORDER BY alert_id, event_id
"""


async def public_versions(
    conn: Conn, alert_ids: Sequence[int], actions: Sequence[AlertAction]
) -> dict[int, PublicVersions]:
    """The public versions of alerts (``actions``: the actions that change what is public)."""
    async with conn.cursor(row_factory=args_row(_event)) as cur:
        await cur.execute(_VERSIONS, [list(alert_ids), [a.value for a in actions]])
        events = await cur.fetchall()
    by_alert: dict[int, list[AlertEvent]] = {}
    for event in events:
        by_alert.setdefault(event.alert_id, []).append(event)
    return {
        alert_id: PublicVersions(rows[0], rows[-1], rows[-2] if len(rows) > 1 else None)
        for alert_id, rows in by_alert.items()
    }
