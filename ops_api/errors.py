"""The ops API's errors and the one place they become HTTP responses.

Route code and queries raise these; :func:`install_error_handlers` maps them (and a lost
database) to status codes with a bilingual body::

    {"detail": "Cảnh báo #12 đã được xác nhận / Alert 12 is already acknowledged",
     "code": "invalid_transition", "message_vi": "...", "message_en": "..."}
"""

from __future__ import annotations

import logging
from typing import ClassVar

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from processing.errors import AlertError, AlertNotFoundError

__all__ = [
    "ApiError",
    "AuthenticationError",
    "InvalidRequestError",
    "InvalidTransitionError",
    "NotFoundError",
    "PermissionDeniedError",
    "UnavailableError",
    "install_error_handlers",
]

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """Base of the ops API's errors.

    Args:
        message_vi: Vietnamese text for operators.
        message_en: English text.
    """

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message_vi: str, message_en: str) -> None:
        super().__init__(f"{message_vi} / {message_en}")
        self.message_vi = message_vi
        self.message_en = message_en


class NotFoundError(ApiError):
    """The thing does not exist, or the caller's scope does not include it."""

    status_code = 404
    code = "not_found"


class InvalidTransitionError(ApiError):
    """An alert action that its current state does not allow."""

    status_code = 409
    code = "invalid_transition"


class AuthenticationError(ApiError):
    """No token, or an unknown one."""

    status_code = 401
    code = "unauthenticated"


class PermissionDeniedError(ApiError):
    """A known token whose role or scope does not allow this."""

    status_code = 403
    code = "forbidden"


class InvalidRequestError(ApiError):
    """Parameters that parse but do not make sense together."""

    status_code = 422
    code = "invalid_request"


class UnavailableError(ApiError):
    """The database cannot be reached."""

    status_code = 503
    code = "unavailable"


def error_body(error: ApiError) -> dict[str, str]:
    """The JSON body for ``error`` (also sent over the WebSocket)."""
    return {
        "detail": str(error),
        "code": error.code,
        "message_vi": error.message_vi,
        "message_en": error.message_en,
    }


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    error = exc if isinstance(exc, ApiError) else ApiError("Lỗi nội bộ", "Internal error")
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, AuthenticationError) else None
    return JSONResponse(error_body(error), status_code=error.status_code, headers=headers)


async def _database_lost(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
    error = UnavailableError("Cơ sở dữ liệu không sẵn sàng", "Database unavailable")
    return JSONResponse(error_body(error), status_code=error.status_code)


async def _alert_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AlertError)  # noqa: S101 - registered for AlertError only
    kind = NotFoundError if isinstance(exc, AlertNotFoundError) else InvalidTransitionError
    error = kind(exc.message_vi, exc.message_en)
    return JSONResponse(error_body(error), status_code=error.status_code)


def install_error_handlers(app: FastAPI) -> None:
    """Map every domain error, and a lost database, to its HTTP response."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(AlertError, _alert_error)
    app.add_exception_handler(psycopg.OperationalError, _database_lost)
    app.add_exception_handler(PoolTimeout, _database_lost)
