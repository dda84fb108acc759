"""``/health`` (database, every service's heartbeat, the live feed) and ``/metrics``."""

from __future__ import annotations

import logging
import time
from typing import Final, Literal

import psycopg
from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from contract import local_iso, now_utc
from ops_api.deps import AppState, MetricsReaderDep, StateDep
from ops_api.metrics import Family, render, service_families
from ops_api.queries import HeartbeatRow, list_heartbeats
from ops_api.responses import errors
from ops_api.timefmt import UtcDatetime

__all__ = ["HealthOut", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

_PROBE_TIMEOUT_S: Final = 2.0
PROMETHEUS_TEXT: Final = "text/plain; version=0.0.4; charset=utf-8"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class DatabaseHealth(_Out):
    """Whether the database answers, and how fast."""

    reachable: bool
    latency_ms: float | None
    error: str | None


class ServiceHealth(_Out):
    """One service instance's last heartbeat and counters."""

    service: str
    instance: str
    status: Literal["ok", "stale"]
    started_at: UtcDatetime
    seen_at: UtcDatetime
    seen_at_local: str
    age_s: float
    stats: dict[str, JsonValue]


class LiveHealth(_Out):
    """The API's own live feed."""

    ws_clients: int
    listener_connected: bool
    last_event_id: int
    listen_reconnects: int


class HealthOut(_Out):
    """Overall health.

    ``down`` (HTTP 503) without a database; ``degraded`` when a service's heartbeat is stale
    or the alert listener is disconnected; else ``ok``.
    """

    system: Literal["hanoi-ioc"] = Field(
        default="hanoi-ioc", description="always hanoi-ioc: tells this API from other programs"
    )
    instance: str | None = Field(description="API_INSTANCE: which running API answered")
    status: Literal["ok", "degraded", "down"]
    time: UtcDatetime
    time_local: str
    database: DatabaseHealth
    services: list[ServiceHealth]
    live: LiveHealth


async def _probe(state: AppState) -> tuple[DatabaseHealth, list[HeartbeatRow]]:
    started = time.perf_counter()
    try:
        timeout_s = min(_PROBE_TIMEOUT_S, state.settings.db_timeout_s)
        async with state.pool.connection(timeout=timeout_s) as conn:
            await conn.execute("SELECT 1")
            latency_ms = (time.perf_counter() - started) * 1000.0
            heartbeats = await list_heartbeats(conn)
    except (psycopg.Error, PoolTimeout) as exc:
        logger.warning("health probe failed: %s", exc)
        return DatabaseHealth(reachable=False, latency_ms=None, error=type(exc).__name__), []
    return DatabaseHealth(reachable=True, latency_ms=round(latency_ms, 2), error=None), heartbeats


@router.get(
    "/health",
    summary="Tình trạng hệ thống / Health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "the database cannot be reached"}},
)
async def health(state: StateDep, response: Response) -> HealthOut:
    """Database reachability, each service's heartbeat age and counters, the live feed."""
    database, heartbeats = await _probe(state)
    stale_s = state.settings.heartbeat_stale_s
    services = [
        ServiceHealth(
            service=h.service,
            instance=h.instance,
            status="ok" if h.age_s <= stale_s else "stale",
            started_at=h.started_at,
            seen_at=h.seen_at,
            seen_at_local=local_iso(h.seen_at),
            age_s=round(h.age_s, 3),
            stats=h.stats,
        )
        for h in heartbeats
    ]
    hub = state.broadcaster
    live = LiveHealth(
        ws_clients=hub.connected,
        listener_connected=hub.stats.listen_connected,
        last_event_id=hub.last_event_id,
        listen_reconnects=hub.stats.listen_reconnects,
    )
    status: Literal["ok", "degraded", "down"] = "ok"
    if not database.reachable:
        status = "down"
        response.status_code = 503
    elif not live.listener_connected or any(s.status == "stale" for s in services):
        status = "degraded"
    now = now_utc()
    return HealthOut(
        instance=state.settings.instance,
        status=status,
        time=now,
        time_local=local_iso(now),
        database=database,
        services=services,
        live=live,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {PROMETHEUS_TEXT: {"schema": {"type": "string"}}}},
        **errors(401, 403, 429, 503),
    },
)
async def metrics(state: StateDep, _reader: MetricsReaderDep) -> PlainTextResponse:
    """Every service's counters (from its heartbeat) and the API's own, as Prometheus text."""
    database, heartbeats = await _probe(state)
    families = _api_families(state, database.reachable)
    rows = ((h.service, h.instance, h.age_s, h.stats) for h in heartbeats)
    families += service_families(rows, state.settings.heartbeat_stale_s)
    return PlainTextResponse(render(families), media_type=PROMETHEUS_TEXT)


def _api_families(state: AppState, db_up: bool) -> list[Family]:
    hub = state.broadcaster
    stats = hub.stats
    gauges = {
        "hanoi_api_db_up": ("1 if the database answered.", float(db_up)),
        "hanoi_api_ws_clients": ("Open WebSocket connections.", float(hub.connected)),
        "hanoi_api_listen_connected": (
            "1 while LISTEN alert_events is connected.",
            float(stats.listen_connected),
        ),
        "hanoi_api_last_event_id": ("Newest alert event id fanned out.", float(hub.last_event_id)),
    }
    counters = {
        "hanoi_api_ws_connections_total": ("WebSocket connections accepted.", stats.connections),
        "hanoi_api_ws_refused_total": (
            "WebSocket connections refused (server full).",
            stats.refused,
        ),
        "hanoi_api_ws_auth_failures_total": (
            "WebSocket authentication failures.",
            stats.auth_failures,
        ),
        "hanoi_api_ws_refused_per_token_total": (
            "WebSocket connections refused (the token holds its maximum).",
            stats.refused_per_token,
        ),
        "hanoi_api_auth_failures_total": (
            "Failed authentications (unknown, expired or revoked tokens).",
            state.authenticator.stats.failures,
        ),
        "hanoi_api_auth_throttled_total": (
            "Requests refused because their address failed to authenticate too often.",
            state.authenticator.stats.throttled,
        ),
        "hanoi_api_token_lookups_total": (
            "Database token lookups (cache misses).",
            state.authenticator.stats.db_lookups,
        ),
        "hanoi_api_writes_rate_limited_total": (
            "Write requests refused by the per-token rate limit.",
            state.writes.refused,
        ),
        "hanoi_api_ws_alert_resyncs_total": (
            "Clients told to resync (alert queue overflow).",
            stats.resyncs,
        ),
        "hanoi_api_ws_readings_coalesced_total": (
            "Readings replaced before being sent.",
            stats.readings_coalesced,
        ),
        "hanoi_api_alert_events_total": ("Alert events read and fanned out.", stats.alert_events),
        "hanoi_api_listen_reconnects_total": (
            "LISTEN reconnect attempts.",
            stats.listen_reconnects,
        ),
    }
    families = [_single(name, text, "gauge", value) for name, (text, value) in gauges.items()]
    families += [_single(name, text, "counter", value) for name, (text, value) in counters.items()]
    gauges_more = {
        "hanoi_api_http_in_flight": ("HTTP requests in progress.", float(state.limits.in_flight)),
    }
    families += [_single(n, t, "gauge", v) for n, (t, v) in gauges_more.items()]
    refused = Family(
        "hanoi_api_http_refused_total", "Requests refused by the request limits.", "counter"
    )
    for code, count in sorted(state.limits.refused.items()):
        refused.add(count, code=code)
    dropped = Family(
        "hanoi_api_ws_dropped_total", "WebSocket clients closed for misbehaving.", "counter"
    )
    dropped.add(stats.dropped_not_reading, reason="not_reading")
    dropped.add(stats.dropped_send_timeout, reason="send_timeout")
    dropped.add(stats.dropped_flooding, reason="flooding")
    families += [refused, dropped]
    sent = Family("hanoi_api_ws_messages_sent_total", "WebSocket messages sent.", "counter")
    for channel in ("alerts", "readings", "status", "control"):
        sent.add(stats.sent[channel], channel=channel)
    polls = Family("hanoi_api_polls_total", "Shared poller runs.", "counter")
    errors = Family("hanoi_api_poll_errors_total", "Shared poller failures.", "counter")
    for poller in (hub.readings, hub.status):
        polls.add(poller.stats.polls, poller=poller.name)
        errors.add(poller.stats.errors, poller=poller.name)
    pool = Family("hanoi_api_db_pool", "psycopg pool statistics (get_stats).", "gauge")
    for key, value in sorted(state.pool.get_stats().items()):
        pool.add(value, stat=key)
    return [*families, sent, polls, errors, pool]


def _single(name: str, text: str, kind: Literal["gauge", "counter"], value: float) -> Family:
    fam = Family(name, text, kind)
    fam.add(value)
    return fam
