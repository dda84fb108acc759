"""Ops API: REST, the WebSocket live feed, CAP 1.2 and the operations console, over the database.

Contract:

- :func:`create_app` builds a FastAPI app from an :class:`ApiSettings`; its lifespan owns
  the connection pool and the :class:`~ops_api.live.broadcaster.Broadcaster` (the LISTEN
  ``alert_events`` task and the shared pollers). Nothing is global.
- ``python -m ops_api`` (:func:`ops_api.__main__.main`) and :func:`serve` run it with uvicorn.
- It reads the schema owned by ``ingest`` (views ``station_state``, ``latest_readings``,
  ``readings_1m``/``readings_1h``) and writes operator transitions (the ``alerts`` row and
  its ``alert_events`` row, in one transaction, through ``processing.alerts.sink``) and
  administration: ``api_tokens``, ``alert_subscribers``, the registry (through
  ``db.register_stations``), each change with its ``admin_audit`` row.
- Limits, roles, administration, the error contract and the live protocol are described
  for integrators and on-call engineers in docs/api.md.
- It imports ``processing.alerts`` (the Alert types) and ``contract`` (domains,
  quantities and their labels), nothing else of the other packages.
"""

from ops_api.app import create_app, serve
from ops_api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app", "serve"]
