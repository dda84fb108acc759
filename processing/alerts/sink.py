"""The only writer of alert rows: ``alerts``, ``alert_events`` and ``incidents``.

Processing's transitions (:func:`apply_commands`, :func:`escalate_unacknowledged`) and the
operators' (:func:`transition_alert`, called by the ops API) are written here and nowhere
else. Every writer takes the event-order lock (``hanoi_lock_alert_events()``, migration
0007) before any row lock, so event ids commit in id order — a client resuming "after
event N" never skips a slower, smaller id — and two writers never wait for each other in a
cycle.

Rows first, then notifications: every ``alert_events`` insert fires ``pg_notify`` through a
trigger, and PostgreSQL delivers notifications only at commit, so a listener never hears of
an alert that was rolled back. An update merges its details into the stored ones (the
event times of earlier transitions stay), and a clear adds its event time as
``cleared_observed_at``: the columns ``raised_at``/``cleared_at`` are wall-clock audit times,
the details say when it happened in the data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Final

from contract import utc_iso
from db import Conn
from processing.alerts import Alert, AlertAction, AlertState, Severity
from processing.alerts.lifecycle import Clear, Command, Raise, Update
from processing.alerts.operator import next_state
from processing.errors import AlertNotFoundError

__all__ = [
    "ACTOR",
    "DECIDED_LOOKBACK_S",
    "apply_commands",
    "decided_alerts",
    "escalate_unacknowledged",
    "open_alerts",
    "transition_alert",
]

logger = logging.getLogger(__name__)

ACTOR: Final = "processing"

_INCIDENT: Final = """
WITH made AS (
    INSERT INTO incidents (group_key, title_vi, title_en) VALUES (%s, %s, %s)
    ON CONFLICT (group_key) WHERE closed_at IS NULL DO NOTHING
    RETURNING incident_id)
SELECT incident_id FROM made
UNION ALL
SELECT incident_id FROM incidents WHERE group_key = %s AND closed_at IS NULL
LIMIT 1"""
_RAISE: Final = """
INSERT INTO alerts (dedup_key, rule, category, severity, state, station_id, quantity, domain,
                    district, title_vi, title_en, message_vi, message_en, value, threshold,
                    observed_at, incident_id, details)
VALUES (%s, %s, %s, %s, 'raised', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (dedup_key) WHERE state <> 'cleared' DO NOTHING
RETURNING alert_id"""
_UPDATE: Final = """
UPDATE alerts SET severity = %s, value = %s, threshold = %s, observed_at = %s,
       title_vi = %s, title_en = %s, message_vi = %s, message_en = %s,
       details = details || %s::jsonb, updated_at = now()
WHERE dedup_key = %s AND state <> 'cleared'
RETURNING alert_id"""
_CLEAR: Final = """
UPDATE alerts SET state = 'cleared', cleared_at = now(), cleared_by = %s, updated_at = now(),
       details = details || jsonb_build_object('cleared_observed_at', %s::text)
WHERE dedup_key = %s AND state <> 'cleared'
RETURNING alert_id, incident_id"""
_CLOSE_INCIDENT: Final = """
UPDATE incidents SET closed_at = now()
WHERE incident_id = %s AND closed_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM alerts WHERE incident_id = %s AND state <> 'cleared')"""
_EVENT: Final = """
INSERT INTO alert_events (alert_id, action, actor, severity, value, note)
VALUES (%s, %s, %s, %s, %s, %s)"""
_LOCK: Final = "SELECT hanoi_lock_alert_events()"
_ESCALATE: Final = """
UPDATE alerts SET escalation_level = escalation_level + 1, updated_at = now()
WHERE state = 'raised'
  AND raised_at < now() - make_interval(secs => %s * (escalation_level + 1))
RETURNING alert_id, severity, escalation_level"""


async def apply_commands(conn: Conn, commands: list[Command]) -> list[str]:
    """Apply commands inside the caller's transaction.

    Returns:
        Dedup keys whose alert turned out to be closed already (cleared by an operator);
        the lifecycle should forget them.
    """
    stale: list[str] = []
    if commands:
        await conn.execute(_LOCK)
    for command in commands:
        if isinstance(command, Raise):
            await _raise(conn, command)
        elif isinstance(command, Update):
            if not await _update(conn, command.alert):
                stale.append(command.alert.dedup_key)
        elif not await _clear(conn, command):
            stale.append(command.dedup_key)
    return stale


async def _raise(conn: Conn, command: Raise) -> None:
    alert = command.alert
    title_vi = f"{alert.title_vi.split(':')[0]} – {alert.district or '?'}"
    title_en = f"{alert.title_en.split(':')[0]} – {alert.district or '?'}"
    cur = await conn.execute(_INCIDENT, (command.group_key, title_vi, title_en, command.group_key))
    row = await cur.fetchone()
    incident = row[0] if row else None
    cur = await conn.execute(
        _RAISE,
        (
            alert.dedup_key, alert.rule, alert.category, alert.severity.value, alert.station_id,
            alert.quantity, alert.domain, alert.district, alert.title_vi, alert.title_en,
            alert.message_vi, alert.message_en, alert.value, alert.threshold, alert.observed_at,
            incident, json.dumps(alert.details),
        ),
    )  # fmt: skip
    row = await cur.fetchone()
    if row is None:
        return  # already open (another instance raised it): nothing new to announce
    await conn.execute(
        _EVENT,
        (row[0], AlertAction.RAISED.value, ACTOR, alert.severity.value, alert.value,
         alert.message_en),
    )  # fmt: skip


async def _update(conn: Conn, alert: Alert) -> bool:
    cur = await conn.execute(
        _UPDATE,
        (
            alert.severity.value, alert.value, alert.threshold, alert.observed_at,
            alert.title_vi, alert.title_en, alert.message_vi, alert.message_en,
            json.dumps(alert.details), alert.dedup_key,
        ),
    )  # fmt: skip
    row = await cur.fetchone()
    if row is None:
        return False
    await conn.execute(
        _EVENT,
        (row[0], AlertAction.UPDATED.value, ACTOR, alert.severity.value, alert.value,
         alert.message_en),
    )  # fmt: skip
    return True


async def _clear(conn: Conn, command: Clear) -> bool:
    cur = await conn.execute(_CLEAR, (ACTOR, utc_iso(command.observed_at), command.dedup_key))
    row = await cur.fetchone()
    if row is None:
        return False
    alert_id, incident = row
    await conn.execute(
        _EVENT, (alert_id, AlertAction.CLEARED.value, ACTOR, None, command.value, command.note)
    )
    if incident is not None:
        await conn.execute(_CLOSE_INCIDENT, (incident, incident))
    return True


async def open_alerts(conn: Conn) -> list[tuple[str, Severity, datetime]]:
    """Dedup key, severity and observation time of every open alert raised by processing."""
    cur = await conn.execute(
        "SELECT dedup_key, severity, observed_at FROM alerts WHERE state <> 'cleared'"
    )
    return [(str(k), Severity(str(s)), t) for k, s, t in await cur.fetchall()]


DECIDED_LOOKBACK_S: Final = 7 * 86400.0
"""How far back (clearing time) :func:`decided_alerts` looks."""
_DECIDED: Final = """
SELECT DISTINCT ON (dedup_key) dedup_key, severity,
       coalesce((details->>'cleared_observed_at')::timestamptz, observed_at),
       (details->>'cleared_observed_at')::timestamptz
FROM alerts
WHERE state = 'cleared' AND cleared_at > now() - make_interval(secs => %s)
  AND NOT EXISTS (SELECT 1 FROM alerts o WHERE o.dedup_key = alerts.dedup_key
                  AND o.state <> 'cleared')
ORDER BY dedup_key, alert_id DESC"""


async def decided_alerts(
    conn: Conn, within_s: float = DECIDED_LOOKBACK_S
) -> list[tuple[str, Severity, datetime, datetime | None]]:
    """The newest cleared alert of each key without an open one, cleared within ``within_s``.

    Dedup key, severity, the last event time it was decided on (its clear's, else its last
    observation's) and the event time of its clear by processing (None when an operator
    cleared it): what the lifecycle needs after a restart so that replayed or late readings
    of an event already decided raise nothing, and its cooldown holds.
    """
    cur = await conn.execute(_DECIDED, (within_s,))
    return [(str(k), Severity(str(s)), seen, cleared)
            for k, s, seen, cleared in await cur.fetchall()]  # fmt: skip


async def escalate_unacknowledged(conn: Conn, after_s: float) -> int:
    """Escalate alerts left unacknowledged for ``after_s`` (again after each further period)."""
    await conn.execute(_LOCK)
    cur = await conn.execute(_ESCALATE, (after_s,))
    rows = await cur.fetchall()
    for alert_id, severity, level in rows:
        minutes = round(after_s * level / 60)
        note = (
            f"Chưa được xác nhận sau {minutes} phút (mức leo thang {level}) / "
            f"unacknowledged for {minutes} min (escalation level {level})"
        )
        await conn.execute(
            _EVENT, (alert_id, AlertAction.ESCALATED.value, ACTOR, severity, None, note)
        )
    return len(rows)


_OPERATOR_UPDATE: Final = """
UPDATE alerts SET
    state = %(state)s,
    updated_at = now(),
    acknowledged_at = CASE WHEN %(ack)s THEN now() ELSE acknowledged_at END,
    acknowledged_by = CASE WHEN %(ack)s THEN %(actor)s ELSE acknowledged_by END,
    cleared_at = CASE WHEN %(clear)s THEN now() ELSE cleared_at END,
    cleared_by = CASE WHEN %(clear)s THEN %(actor)s ELSE cleared_by END
WHERE alert_id = %(alert_id)s"""
_OPERATOR_EVENT: Final = """
INSERT INTO alert_events (alert_id, action, actor, severity, note)
SELECT alert_id, %(action)s, %(actor)s, severity, %(note)s FROM alerts WHERE alert_id = %(alert_id)s
RETURNING event_id"""


async def transition_alert(
    conn: Conn,
    alert_id: int,
    action: AlertAction,
    *,
    actor: str,
    note: str | None,
    can_see: Callable[[str | None], bool],
) -> int:
    """An operator's action: the row and its event, in one transaction of its own.

    Args:
        conn: a connection outside any transaction.
        alert_id: the alert.
        action: acknowledge, clear or comment (:mod:`processing.alerts.operator`).
        actor: who (the token's name).
        note: the operator's comment.
        can_see: whether the caller may see alerts of a domain.

    Returns:
        The id of the event recorded.

    Raises:
        AlertNotFoundError: no such alert, or ``can_see`` refuses its domain.
        InvalidTransitionError: the alert's state does not allow ``action``.
    """
    async with conn.transaction():
        await conn.execute(_LOCK)
        cur = await conn.execute(
            "SELECT state, domain FROM alerts WHERE alert_id = %s FOR UPDATE", [alert_id]
        )
        row = await cur.fetchone()
        if row is None or not can_see(row[1]):
            raise _not_found(alert_id)
        after = next_state(AlertState(row[0]), action, alert_id)
        if action is not AlertAction.COMMENTED:
            flags = {"ack": action is AlertAction.ACKNOWLEDGED,
                     "clear": action is AlertAction.CLEARED}  # fmt: skip
            await conn.execute(
                _OPERATOR_UPDATE,
                {"state": after.value, "actor": actor, "alert_id": alert_id, **flags},
            )
        cur = await conn.execute(
            _OPERATOR_EVENT,
            {"alert_id": alert_id, "action": action.value, "actor": actor, "note": note},
        )
        event = await cur.fetchone()
    if event is None:  # pragma: no cover - the row was locked above
        raise _not_found(alert_id)
    return int(event[0])


def _not_found(alert_id: int) -> AlertNotFoundError:
    return AlertNotFoundError(f"Không có cảnh báo #{alert_id}", f"No alert {alert_id}")
