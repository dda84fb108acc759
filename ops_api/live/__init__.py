"""Live feed: the alert broadcaster, shared pollers and the WebSocket endpoint."""
