"""What an operator may do to an alert in each state (pure).

raise -> acknowledge -> clear; clearing straight from ``raised`` is allowed (a false alarm),
comments are allowed in every state. Everything else is a conflict with a message an
operator can act on.

>>> next_state(AlertState.RAISED, AlertAction.ACKNOWLEDGED, 7)
<AlertState.ACKNOWLEDGED: 'acknowledged'>
>>> next_state(AlertState.CLEARED, AlertAction.COMMENTED, 7)
<AlertState.CLEARED: 'cleared'>
>>> try:
...     next_state(AlertState.CLEARED, AlertAction.ACKNOWLEDGED, 7)
... except InvalidTransitionError as exc:
...     print(exc.message_vi, "/", exc.message_en)
Cảnh báo #7 đã được đóng, không thể xác nhận / Alert 7 is already cleared; it cannot be acknowledged
"""

from __future__ import annotations

from typing import Final

from processing.alerts import AlertAction, AlertState
from processing.errors import InvalidTransitionError

__all__ = ["OPERATOR_ACTIONS", "next_state"]

OPERATOR_ACTIONS: Final = frozenset(
    {AlertAction.ACKNOWLEDGED, AlertAction.CLEARED, AlertAction.COMMENTED}
)
_STATE_VI: Final = {
    AlertState.RAISED: "đang mở",
    AlertState.ACKNOWLEDGED: "đã được xác nhận",
    AlertState.CLEARED: "đã được đóng",
}
_ACTION_VI: Final = {
    AlertAction.ACKNOWLEDGED: "xác nhận",
    AlertAction.CLEARED: "đóng",
    AlertAction.COMMENTED: "ghi chú",
}
_ACTION_EN: Final = {
    AlertAction.ACKNOWLEDGED: "acknowledged",
    AlertAction.CLEARED: "cleared",
    AlertAction.COMMENTED: "commented on",
}
_ALLOWED: Final = {
    (AlertState.RAISED, AlertAction.ACKNOWLEDGED): AlertState.ACKNOWLEDGED,
    (AlertState.RAISED, AlertAction.CLEARED): AlertState.CLEARED,
    (AlertState.ACKNOWLEDGED, AlertAction.CLEARED): AlertState.CLEARED,
}


def next_state(state: AlertState, action: AlertAction, alert_id: int) -> AlertState:
    """The state after an operator's ``action``.

    Raises:
        InvalidTransitionError: when ``state`` does not allow ``action``.
    """
    if action is AlertAction.COMMENTED:
        return state
    after = _ALLOWED.get((state, action)) if action in OPERATOR_ACTIONS else None
    if after is None:
        verb_vi = _ACTION_VI.get(action, action.value)
        verb_en = _ACTION_EN.get(action, action.value)
        message_vi = f"Cảnh báo #{alert_id} {_STATE_VI[state]}, không thể {verb_vi}"
        message_en = f"Alert {alert_id} is already {state.value}; it cannot be {verb_en}"
        raise InvalidTransitionError(message_vi, message_en)
    return after
