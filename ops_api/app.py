"""The application factory: routes, error mapping, and the lifespan that owns the resources.

The lifespan opens the connection pool (without waiting: the API starts, and ``/health``
says ``down``, while the database is away) and the :class:`Broadcaster`, and yields them
as one typed :class:`~ops_api.deps.AppState`. Nothing is global: two apps with different
settings can run in one process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final

import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg_pool import AsyncConnectionPool

from contract import StaleRule
from db import Conn
from ops_api.deps import AppState
from ops_api.errors import install_error_handlers
from ops_api.live.broadcaster import Broadcaster
from ops_api.live.ws import live_endpoint
from ops_api.queries import Pool
from ops_api.routes import alerts, cap, console, health, quarantine, readings, stations
from ops_api.settings import ApiSettings

__all__ = ["create_app", "open_pool", "serve"]

_DESCRIPTION: Final = """
Hệ thống vận hành đô thị thông minh Hà Nội — API vận hành.
Hanoi IOC operations API: stations (GeoJSON), latest values, history, indices, the alert
inbox with acknowledge/clear/comment, flood alerts as CAP 1.2, quarantine, health and
Prometheus metrics.

Authenticate with `Authorization: Bearer <token>`. Times are ISO 8601 UTC; `*_local` fields
are Asia/Ho_Chi_Minh. The live feed is the WebSocket `/ws` (formats in
`ops_api/live/messages.py`); the operations console is served at `/`.
"""
_TAGS: Final = [
    {"name": "stations", "description": "Trạm đo / Stations and latest values"},
    {"name": "readings", "description": "Lịch sử và chỉ số / History and indices"},
    {"name": "alerts", "description": "Cảnh báo / Alert inbox and operator actions"},
    {"name": "cap", "description": "Bản tin CAP 1.2 cảnh báo ngập / Flood alerts as CAP 1.2"},
    {"name": "quarantine", "description": "Dữ liệu bị cách ly / Refused messages"},
    {"name": "health", "description": "Tình trạng / Health and metrics"},
]


async def _utc_session(conn: Conn) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


def open_pool(settings: ApiSettings) -> Pool:
    """The API's connection pool (enter it with ``async with``)."""
    return AsyncConnectionPool(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=max(settings.db_pool_min_size, settings.db_pool_max_size),
        kwargs={"autocommit": True},
        configure=_utc_session,
        check=AsyncConnectionPool.check_connection,
        timeout=settings.db_timeout_s,
        open=False,
        name="ops_api",
    )


def _lifespan(
    settings: ApiSettings,
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, AppState]]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        rule = StaleRule(settings.stale_factor, settings.stale_min_s)
        async with contextlib.AsyncExitStack() as stack:
            pool = await stack.enter_async_context(open_pool(settings))
            broadcaster = await stack.enter_async_context(Broadcaster(settings, pool, rule))
            yield {
                "ops": AppState(
                    settings=settings,
                    pool=pool,
                    broadcaster=broadcaster,
                    grants=settings.effective_tokens,
                    stale_rule=rule,
                )
            }

    return lifespan


def create_app(settings: ApiSettings) -> FastAPI:
    """Build the ops API for ``settings``."""
    app = FastAPI(
        title="Hanoi IOC — ops API",
        description=_DESCRIPTION,
        version="0.1.0",
        openapi_tags=_TAGS,
        lifespan=_lifespan(settings),
    )
    install_error_handlers(app)
    for module in (stations, readings, alerts, cap, quarantine, health, console):
        app.include_router(module.router)
    app.add_api_websocket_route("/ws", live_endpoint, name="live")
    app.mount("/static", StaticFiles(directory=console.STATIC_DIR), name="static")
    return app


async def serve(settings: ApiSettings, *, log_level: str = "info") -> None:
    """Run the API with uvicorn on the current event loop until cancelled or signalled."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        ws_ping_interval=settings.ws_heartbeat_s,
        ws_ping_timeout=settings.ws_heartbeat_s,
        proxy_headers=True,
    )
    await uvicorn.Server(config).serve()
