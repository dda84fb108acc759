"""A real HTTP webhook receiver on a local port, as a department would run one (stdlib only).

It verifies every request as docs/webhooks.md tells receivers to (the signature over the
timestamp and the body, in constant time; a timestamp within five minutes), answers 401 to
what fails, and deduplicates on the delivery id. It can be taken down — the port then
refuses connections, as a crashed receiver's would — and brought back on the same port, or
made to answer an error status for a while.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from contract.webhook import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)

__all__ = ["Received", "Receiver"]


@dataclass(frozen=True, slots=True)
class Received:
    """One request that reached the receiver."""

    delivery_id: str
    path: str
    event: str
    body: dict[str, Any]
    verified: bool
    answered: int


@dataclass
class Receiver:
    """A receiver for one subscriber's secret (set ``secret`` once the subscriber exists)."""

    secret: str = ""
    secrets: dict[str, str] = field(default_factory=dict)  # by path, for several subscribers
    port: int = 0
    answer: int = 200
    requests: list[Received] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.url_at("/hooks/ioc")

    def url_at(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def first_arrivals(self) -> list[dict[str, Any]]:
        """Each accepted delivery once, in the order it first arrived."""
        with self._lock:
            return list(self.accepted.values())

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.handle(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take the receiver down: its port refuses connections until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        delivery = request.headers.get(DELIVERY_HEADER, "")
        verified = verify(
            self.secrets.get(request.path, self.secret),
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
            now_s=time.time(),
        )
        status = self.answer if verified else 401
        doc: dict[str, Any] = json.loads(body) if verified else {}
        with self._lock:
            event = request.headers.get(EVENT_HEADER, "")
            self.requests.append(Received(delivery, request.path, event, doc, verified, status))
            if verified and 200 <= status < 300:
                self.accepted.setdefault(delivery, doc)  # a duplicate changes nothing
        request.send_response(status)
        request.send_header("Content-Length", "0")
        request.end_headers()
