"""Ops API: REST, WebSocket live feed and the operations console, over the database."""
