"""Alert persistence: commands -> ``alerts`` / ``alert_events`` / ``incidents`` rows.

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
from datetime import datetime
from typing import Final

from db import Conn
from processing.alerts import Alert, AlertAction, Severity
from processing.lifecycle import Clear, Command, Raise, Update, iso_utc

__all__ = ["ACTOR", "apply_commands", "escalate_unacknowledged", "open_alerts"]

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
    cur = await conn.execute(_CLEAR, (ACTOR, iso_utc(command.observed_at), command.dedup_key))
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


async def escalate_unacknowledged(conn: Conn, after_s: float) -> int:
    """Escalate alerts left unacknowledged for ``after_s`` (again after each further period)."""
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
