"""The ops API's errors and the one place they become HTTP responses.

Route code and queries raise these; :func:`install_error_handlers` maps them, FastAPI's
validation errors, Starlette's HTTP errors (unknown path, wrong method) and a busy or lost
database to status codes with one bilingual body::

    {"detail": "Cảnh báo #12 đã được xác nhận / Alert 12 is already acknowledged",
     "code": "invalid_transition", "message_vi": "...", "message_en": "..."}

Validation errors add ``errors``: where and why, without echoing the input. A 503 always
says why in ``code`` (``overloaded``: every pooled connection is busy; ``query_timeout``: the
database took too long; ``database_unavailable``: it cannot be reached) and carries
``Retry-After``; so does a 429.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout, TooManyRequests
from starlette.exceptions import HTTPException as StarletteHTTPException

from processing.errors import AlertError, AlertNotFoundError

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ConflictError",
    "DatabaseUnavailableError",
    "InvalidRequestError",
    "InvalidTransitionError",
    "NotFoundError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QueryTimeoutError",
    "RateLimitedError",
    "UnavailableError",
    "error_body",
    "error_response",
    "install_error_handlers",
    "unavailable_from",
]

logger = logging.getLogger(__name__)

_MAX_ERRORS: Final = 20  # validation errors reported per response


class ApiError(Exception):
    """Base of the ops API's errors.

    Args:
        message_vi: Vietnamese text for operators.
        message_en: English text.
        retry_after_s: for 429/503, when to try again (sent as ``Retry-After``).
    """

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message_vi: str, message_en: str, retry_after_s: int | None = None) -> None:
        super().__init__(f"{message_vi} / {message_en}")
        self.message_vi = message_vi
        self.message_en = message_en
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        """Response headers this error needs."""
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(max(1, self.retry_after_s))}


class NotFoundError(ApiError):
    """The thing does not exist, or the caller's scope does not include it."""

    status_code = 404
    code = "not_found"


class InvalidTransitionError(ApiError):
    """An alert action that its current state does not allow."""

    status_code = 409
    code = "invalid_transition"


class ConflictError(ApiError):
    """A change the current state of the resource does not allow."""

    status_code = 409
    code = "conflict"


class AuthenticationError(ApiError):
    """No token, or an unknown, expired or revoked one."""

    status_code = 401
    code = "unauthenticated"

    @property
    def headers(self) -> dict[str, str]:
        """``WWW-Authenticate: Bearer``."""
        return {"WWW-Authenticate": "Bearer"}


class PermissionDeniedError(ApiError):
    """A known token whose role or scope does not allow this."""

    status_code = 403
    code = "forbidden"


class InvalidRequestError(ApiError):
    """Parameters that parse but do not make sense together."""

    status_code = 422
    code = "invalid_request"


class PayloadTooLargeError(ApiError):
    """A request body over the limit (refused before it is read)."""

    status_code = 413
    code = "payload_too_large"


class RateLimitedError(ApiError):
    """A token (or client address) over its request rate."""

    status_code = 429
    code = "rate_limited"


class UnavailableError(ApiError):
    """The request cannot be served now; try again after ``Retry-After``."""

    status_code = 503
    code = "unavailable"


class OverloadedError(UnavailableError):
    """Every pooled database connection (or request slot) is busy."""

    code = "overloaded"


class DatabaseUnavailableError(UnavailableError):
    """The database cannot be reached."""

    code = "database_unavailable"


class QueryTimeoutError(UnavailableError):
    """The database did not answer within the statement timeout."""

    code = "query_timeout"


def error_body(
    error: ApiError, errors: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The JSON body for ``error`` (also sent over the WebSocket)."""
    body: dict[str, Any] = {
        "detail": str(error),
        "code": error.code,
        "message_vi": error.message_vi,
        "message_en": error.message_en,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return body


def error_response(
    error: ApiError, errors: Sequence[Mapping[str, Any]] | None = None
) -> JSONResponse:
    """The HTTP response for ``error``."""
    return JSONResponse(
        error_body(error, errors), status_code=error.status_code, headers=error.headers
    )


def unavailable_from(exc: Exception, *, busy: bool, retry_after_s: int) -> UnavailableError:
    """The 503 a database failure means.

    Args:
        exc: a :class:`psycopg.OperationalError` or a :class:`~psycopg_pool.PoolTimeout`.
        busy: for a pool timeout, whether the pool is at its size limit (every connection
            busy: overload) rather than unable to open connections (the database is away).
        retry_after_s: the ``Retry-After`` to send.
    """
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return QueryTimeoutError(
            "Cơ sở dữ liệu trả lời quá chậm, vui lòng thử lại",
            "The database took too long to answer; try again",
            retry_after_s,
        )
    if isinstance(exc, TooManyRequests) or (isinstance(exc, PoolTimeout) and busy):
        return OverloadedError(
            "Hệ thống đang quá tải, vui lòng thử lại sau giây lát",
            "The API is overloaded; try again shortly",
            retry_after_s,
        )
    return DatabaseUnavailableError(
        "Cơ sở dữ liệu không sẵn sàng", "Database unavailable", retry_after_s
    )


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    error = exc if isinstance(exc, ApiError) else ApiError("Lỗi nội bộ", "Internal error")
    return error_response(error)


def _pool_busy(request: Request) -> bool:
    state = getattr(request.state, "ops", None)
    pool = getattr(state, "pool", None)
    if pool is None:
        return False
    stats = pool.get_stats()
    return int(stats.get("pool_size", 0)) >= int(stats.get("pool_max", 1))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    settings = getattr(getattr(request.state, "ops", None), "settings", None)
    retry_after_s = int(getattr(settings, "retry_after_s", 2))
    error = unavailable_from(exc, busy=_pool_busy(request), retry_after_s=retry_after_s)
    logger.warning(
        "%s for %s %s: %s", error.code, request.method, request.url.path, type(exc).__name__
    )
    return error_response(error)


async def _bad_value(request: Request, exc: Exception) -> JSONResponse:
    # A value the database refused (out of its range): the input's fault, not the server's.
    logger.warning("database refused a value for %s %s: %s", request.method, request.url.path, exc)
    error = InvalidRequestError("Giá trị không hợp lệ", "A value is out of range")
    return error_response(error)


def _error_items(exc: RequestValidationError) -> list[dict[str, Any]]:
    items = []
    for err in exc.errors()[:_MAX_ERRORS]:
        items.append(
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return items


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    items = _error_items(exc)
    if any(item["type"] == "json_invalid" for item in items):
        error: ApiError = _MalformedJson("Nội dung JSON không hợp lệ", "The body is not valid JSON")
    else:
        error = InvalidRequestError(
            "Tham số hoặc nội dung yêu cầu không hợp lệ", "Invalid parameters or body"
        )
    return error_response(error, items)


class _MalformedJson(InvalidRequestError):
    code = "malformed_json"


_HTTP_CODES: Final = {
    400: ("bad_request", "Yêu cầu không hợp lệ", "Bad request"),
    404: ("not_found", "Không tìm thấy", "Not found"),
    405: ("method_not_allowed", "Phương thức không được hỗ trợ", "Method not allowed"),
    413: ("payload_too_large", "Nội dung yêu cầu quá lớn", "Request body too large"),
}


_UNPARSABLE_BODY: Final = "There was an error parsing the body"  # FastAPI's, e.g. not UTF-8


def _allowed_methods(request: Request) -> str:
    """Every method the API documents on this path (Starlette names only one route's)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request.url.path):
            methods.update(m.upper() for m in operations)
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        error = _MalformedJson("Nội dung JSON không hợp lệ", "The body is not valid JSON")
        return error_response(error)
    code, vi, en = _HTTP_CODES.get(exc.status_code, ("http_error", "Lỗi yêu cầu", "HTTP error"))
    body = {"detail": f"{vi} / {en}", "code": code, "message_vi": vi, "message_en": en}
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def _alert_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AlertError)  # noqa: S101 - registered for AlertError only
    kind = NotFoundError if isinstance(exc, AlertNotFoundError) else InvalidTransitionError
    return error_response(kind(exc.message_vi, exc.message_en))


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ApiError("Lỗi nội bộ", "Internal error"))


def install_error_handlers(app: FastAPI) -> None:
    """Map every domain error, validation and HTTP errors, and the database to responses."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(AlertError, _alert_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(psycopg.OperationalError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(TooManyRequests, _database_error)
    app.add_exception_handler(psycopg.DataError, _bad_value)
    app.add_exception_handler(Exception, _internal)
