"""Webhooks: every public alert event, signed, to the subscribers that asked for it.

The outbox (``webhook_outbox``, :mod:`db.webhooks`) is written by a trigger in the
transaction of each alert event; the dispatcher (:mod:`webhooks.service`) claims due rows,
POSTs them signed (:mod:`contract.webhook`), retries with jittered exponential backoff
(:mod:`webhooks.policy`) and gives up into a dead-letter state that admins can redeliver.
It sits beside the ops API, above the stages: it reads processing's rule registry to send
only public hazards. Run it with ``python -m webhooks`` or ``hanoi-ioc webhooks run``; see
docs/webhooks.md.
"""
