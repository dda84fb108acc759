"""Alerts: the one owner of the alert state machine and of alert rows.

- :mod:`~processing.alerts.model` — :class:`Alert`, :class:`AlertEvent`, severities, states
  and actions (the vocabulary the ops API serves);
- :mod:`~processing.alerts.lifecycle` — the automatic transitions: conditions in, raise /
  update / clear out, with hysteresis, cooldown and confirmation (pure);
- :mod:`~processing.alerts.operator` — what an operator may do in each state (pure);
- :mod:`~processing.alerts.sink` — the only writer of ``alerts``, ``alert_events`` and
  ``incidents`` rows, for processing's transitions and the operators' alike.
"""

from processing.alerts.model import (
    Alert,
    AlertAction,
    AlertEvent,
    AlertState,
    Category,
    Severity,
)

__all__ = ["Alert", "AlertAction", "AlertEvent", "AlertState", "Category", "Severity"]
