"""The outermost guard: request size and concurrency limits, before routing and authentication.

:class:`RequestLimits` is a plain ASGI middleware. For every HTTP request it checks, in this
order and before the application sees anything:

- the URL (path and query string) is at most ``max_url_bytes`` (414 ``uri_too_long``);
- there are at most ``max_headers`` headers of ``max_header_bytes`` in all (431
  ``headers_too_large``); the HTTP parser bounds what it buffers before that (uvicorn's
  ``h11_max_incomplete_event_size``);
- a declared ``Content-Length`` is at most ``max_body_bytes`` (413 ``payload_too_large``,
  sent without reading a byte of the body); a body without a length (chunked) is counted as
  it is read and refused with 413 the moment it passes the limit;
- fewer than ``max_concurrent_requests`` requests are in progress (503 ``overloaded`` with
  ``Retry-After`` otherwise; ``/health`` is exempt so probes still see the truth).

WebSocket handshakes only get the URL check; their limits are the live feed's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops_api.errors import ApiError, OverloadedError, PayloadTooLargeError, error_response

__all__ = ["LimitStats", "RequestLimits"]

logger = logging.getLogger(__name__)

_EXEMPT: Final = frozenset({"/health"})


class _UriTooLongError(ApiError):
    status_code = 414
    code = "uri_too_long"


class _HeadersTooLargeError(ApiError):
    status_code = 431
    code = "headers_too_large"


class _BadLengthError(ApiError):
    status_code = 400
    code = "bad_request"


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit.

    An ``HTTPException`` so that FastAPI's body parsing lets it through unchanged and the
    error handlers answer 413 with the error contract.
    """

    def __init__(self) -> None:
        super().__init__(413)


@dataclass(slots=True)
class LimitStats:
    """Counters of refused requests (exported on /metrics)."""

    refused: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0

    def count(self, code: str) -> None:
        """Count one refusal."""
        self.refused[code] = self.refused.get(code, 0) + 1


class RequestLimits:
    """ASGI middleware enforcing the request limits.

    Args:
        app: the application.
        max_body_bytes: the largest body.
        max_url_bytes: the longest path plus query string.
        max_headers: the most headers.
        max_header_bytes: the most header bytes (names and values).
        max_concurrent: requests in progress at most.
        retry_after_s: ``Retry-After`` of the 503.
        stats: where refusals are counted.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_url_bytes: int,
        max_headers: int,
        max_header_bytes: int,
        max_concurrent: int,
        retry_after_s: int,
        stats: LimitStats,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_url_bytes = max_url_bytes
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes
        self.max_concurrent = max_concurrent
        self.retry_after_s = retry_after_s
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on (or answer the refusal)."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(
            scope.get("query_string", b"")
        )
        if url_bytes > self.max_url_bytes:
            await self._refuse(scope, receive, send, _url_too_long(self.max_url_bytes))
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        refusal = self._check_head(scope)
        if refusal is not None:
            await self._refuse(scope, receive, send, refusal)
            return
        exempt = scope["path"] in _EXEMPT
        if not exempt and self.stats.in_flight >= self.max_concurrent:
            await self._refuse(scope, receive, send, self._overloaded())
            return
        self.stats.in_flight += 1
        try:
            await self._call_counted(scope, receive, send)
        finally:
            self.stats.in_flight -= 1

    def _check_head(self, scope: Scope) -> ApiError | None:
        headers = scope["headers"]
        size = sum(len(name) + len(value) for name, value in headers)
        if len(headers) > self.max_headers or size > self.max_header_bytes:
            return _HeadersTooLargeError(
                f"Header quá nhiều hoặc quá lớn (tối đa {self.max_headers} header, "
                f"{self.max_header_bytes} byte)",
                f"Too many or too large headers (at most {self.max_headers} headers, "
                f"{self.max_header_bytes} bytes)",
            )
        for name, value in headers:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length < 0:
                    return _BadLengthError("Content-Length không hợp lệ", "Invalid Content-Length")
                if length > self.max_body_bytes:
                    return self._too_large()
        return None

    def _too_large(self) -> PayloadTooLargeError:
        most = self.max_body_bytes
        return PayloadTooLargeError(
            f"Nội dung yêu cầu quá lớn (tối đa {most} byte)",
            f"Request body too large (at most {most} bytes)",
        )

    def _overloaded(self) -> OverloadedError:
        return OverloadedError(
            "Hệ thống đang quá tải, vui lòng thử lại sau giây lát",
            "The API is overloaded; try again shortly",
            self.retry_after_s,
        )

    async def _call_counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if started:
                raise
            self.stats.count(PayloadTooLargeError.code)
            await error_response(self._too_large())(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
        self.stats.count(error.code)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1009, "reason": error.message_en})
            return
        response = error_response(error)
        # The body (if any) is not read: tell the client this connection ends here.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _url_too_long(most: int) -> ApiError:
    return _UriTooLongError(
        f"Địa chỉ (URL) quá dài (tối đa {most} byte)", f"URL too long (at most {most} bytes)"
    )
