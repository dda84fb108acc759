"""The application factory: routes, error mapping, and the lifespan that owns the resources.

The lifespan opens the connection pool (without waiting: the API starts, and ``/health``
says ``down``, while the database is away) and the :class:`Broadcaster`, and yields them
as one typed :class:`~ops_api.deps.AppState`. Nothing is global: two apps with different
settings can run in one process.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg_pool import AsyncConnectionPool
from uvicorn.config import LOGGING_CONFIG

from contract import StaleRule
from db import Conn
from ops_api.authenticator import Authenticator
from ops_api.deps import AppState
from ops_api.errors import install_error_handlers
from ops_api.limits import LimitStats, RequestLimits
from ops_api.live.broadcaster import Broadcaster
from ops_api.live.ws import live_endpoint
from ops_api.queries import Pool
from ops_api.ratelimit import RateLimiter
from ops_api.redact import install_redaction
from ops_api.routes import (
    admin_audit,
    admin_deliveries,
    admin_stations,
    admin_subscribers,
    admin_tokens,
    alerts,
    cap,
    console,
    docs,
    health,
    quarantine,
    readings,
    stations,
)
from ops_api.settings import ApiSettings

__all__ = ["create_app", "open_pool", "serve"]

_DESCRIPTION: Final = """
Hệ thống vận hành đô thị thông minh Hà Nội — API vận hành.
Hanoi IOC operations API: stations (GeoJSON), latest values, history, indices, the alert
inbox with acknowledge/clear/comment, flood alerts as CAP 1.2, quarantine, health and
Prometheus metrics.

Authenticate with `Authorization: Bearer <token>` (never in a URL). Times are ISO 8601 UTC;
`*_local` fields are Asia/Ho_Chi_Minh. Every error has the body
`{detail, code, message_vi, message_en}`; 429 and 503 carry `Retry-After`. Limits, roles,
administration and the live feed (the WebSocket `/ws`) are described in docs/api.md; the
operations console is served at `/`.
"""
_TAGS: Final = [
    {"name": "stations", "description": "Trạm đo / Stations and latest values"},
    {"name": "readings", "description": "Lịch sử và chỉ số / History and indices"},
    {"name": "alerts", "description": "Cảnh báo / Alert inbox and operator actions"},
    {"name": "cap", "description": "Bản tin CAP 1.2 cảnh báo ngập / Flood alerts as CAP 1.2"},
    {"name": "quarantine", "description": "Dữ liệu bị cách ly / Refused messages"},
    {"name": "health", "description": "Tình trạng / Health and metrics"},
    {"name": "admin", "description": "Quản trị / Tokens, subscribers, stations, audit (admin)"},
]


def open_pool(settings: ApiSettings) -> Pool:
    """The API's connection pool (enter it with ``async with``).

    Sessions run in UTC with a statement timeout; at most ``db_max_waiting`` requests queue
    for a connection (more fail at once, as 503 ``overloaded``).
    """
    timeout_ms = int(settings.db_statement_timeout_s * 1000)

    async def configure(conn: Conn) -> None:
        await conn.execute("SET TIME ZONE 'UTC'")
        await conn.execute(f"SET statement_timeout = {timeout_ms}")

    return AsyncConnectionPool(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=max(settings.db_pool_min_size, settings.db_pool_max_size),
        kwargs={"autocommit": True},
        configure=configure,
        check=AsyncConnectionPool.check_connection,
        timeout=settings.db_timeout_s,
        max_waiting=settings.db_max_waiting,
        open=False,
        name="ops_api",
    )


def _lifespan(
    settings: ApiSettings, limits: LimitStats
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, AppState]]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        rule = StaleRule(settings.stale_factor, settings.stale_min_s)
        async with contextlib.AsyncExitStack() as stack:
            pool = await stack.enter_async_context(open_pool(settings))
            authenticator = Authenticator(
                settings.effective_tokens,
                pool,
                anonymous=settings.anonymous_viewers,
                cache_s=settings.token_cache_s,
                failures_per_min=settings.auth_failures_per_min,
            )
            broadcaster = await stack.enter_async_context(Broadcaster(settings, pool, rule))
            writes = RateLimiter(rate_per_s=settings.write_rate_per_s, burst=settings.write_burst)
            yield {
                "ops": AppState(
                    settings=settings,
                    pool=pool,
                    broadcaster=broadcaster,
                    authenticator=authenticator,
                    stale_rule=rule,
                    writes=writes,
                    limits=limits,
                )
            }

    return lifespan


def create_app(settings: ApiSettings) -> FastAPI:
    """Build the ops API for ``settings``."""
    limits = LimitStats()
    app = FastAPI(
        title="Hanoi IOC — ops API",
        description=_DESCRIPTION,
        version="0.1.0",
        openapi_tags=_TAGS,
        openapi_url="/openapi.json" if settings.effective_docs else None,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan(settings, limits),
    )
    install_error_handlers(app)
    routers = [stations, readings, alerts, cap, quarantine, health, console]
    routers += [admin_tokens, admin_subscribers, admin_deliveries, admin_stations, admin_audit]
    for module in routers:
        app.include_router(module.router)
    app.include_router(admin_deliveries.redeliveries)
    app.add_api_websocket_route("/ws", live_endpoint, name="live")
    app.mount("/static", StaticFiles(directory=console.STATIC_DIR), name="static")
    if settings.effective_docs:
        app.include_router(docs.router)
        app.mount(docs.ASSETS_URL, StaticFiles(directory=docs.ASSETS_DIR), name="docs-assets")
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_url_bytes=settings.max_url_bytes,
        max_headers=settings.max_headers,
        max_header_bytes=settings.max_header_bytes,
        max_concurrent=settings.max_concurrent_requests,
        retry_after_s=settings.retry_after_s,
        stats=limits,
    )
    return app


def log_config() -> dict[str, Any]:
    """Uvicorn's logging configuration with credentials redacted from every line."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": "ops_api.redact.RedactingFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    return config


def uvicorn_config(settings: ApiSettings, *, log_level: str = "info") -> uvicorn.Config:
    """How uvicorn runs the API.

    h11 (whose buffer limit is enforced), the connection cap, the WebSocket frame limit,
    protocol pings, and redacted logs.
    """
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=log_config(),
        http="h11",
        h11_max_incomplete_event_size=settings.max_header_bytes,
        ws="websockets-sansio",
        ws_max_size=settings.ws_max_message_bytes,
        ws_max_queue=16,
        ws_ping_interval=settings.ws_heartbeat_s,
        ws_ping_timeout=settings.ws_pong_timeout_s,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=5,
        proxy_headers=True,
        server_header=False,
    )


async def serve(settings: ApiSettings, *, log_level: str = "info") -> None:
    """Run the API with uvicorn on the current event loop until cancelled or signalled."""
    install_redaction(logging.getLogger())
    await uvicorn.Server(uvicorn_config(settings, log_level=log_level)).serve()
