"""The ops API served by real uvicorn in a background thread (for tests that need real HTTP).

It runs with :func:`ops_api.app.uvicorn_config`, so the HTTP parser's limits, the connection
cap and the WebSocket frame limit are the production ones.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from ops_api.app import uvicorn_config
from ops_api.settings import ApiSettings

__all__ = ["free_port", "running_api"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
