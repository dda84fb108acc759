"""The ops API served by real uvicorn in a background thread (for tests that need real HTTP).

It runs with :func:`ops_api.app.uvicorn_config`, so the HTTP parser's limits, the connection
cap and the WebSocket frame limit are the production ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from hanoi_ioc.embedded import free_port
from ops_api.app import uvicorn_config
from ops_api.settings import ApiSettings

__all__ = ["free_port", "running_api"]


@contextmanager
def running_api(settings: ApiSettings, *, timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``settings`` (whose host/port are used) and yield the base URL."""
    server = uvicorn.Server(uvicorn_config(settings, log_level="warning"))
    thread = threading.Thread(target=server.run, name="ops-api-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            msg = "the API did not start"
            raise RuntimeError(msg)
        time.sleep(0.05)
    try:
        yield f"http://{settings.host}:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
