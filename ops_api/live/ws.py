"""The ``/ws`` endpoint: authenticate, then read requests and send the live feed.

Each connection runs three tasks: the reader (subscribe/unsubscribe/ping), the sender (the
only task that writes to the socket: control messages first, then alert replays and live
alerts, station states, and readings at the client's rate) and the heartbeat. Message
formats are documented in :mod:`ops_api.live.messages`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from contract import Domain, now_utc
from ops_api.auth import Principal
from ops_api.deps import AppState, app_state, authenticate
from ops_api.errors import ApiError, AuthenticationError, error_body
from ops_api.live.client import AlertFilter, ClientFloodError, LiveClient, ScopeFilter
from ops_api.live.messages import (
    AlertsSubscribeIn,
    AuthIn,
    Channel,
    ClientMessage,
    ErrorMessage,
    HelloMessage,
    LimitsOut,
    PingIn,
    PingMessage,
    PongMessage,
    PrincipalOut,
    ReadingsSubscribeIn,
    ReplayDoneMessage,
    StatusSubscribeIn,
    SubscribedMessage,
    UnsubscribedMessage,
    UnsubscribeIn,
    client_message,
)

__all__ = ["live_endpoint"]

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED: Final = 4401
CLOSE_TRY_AGAIN_LATER: Final = 1013
CLOSE_POLICY: Final = 1008
_FULL: Final = ("Máy chủ đã đủ kết nối, vui lòng thử lại sau", "Too many clients, try again later")
_BAD_MESSAGE: Final = ("Tin nhắn không hợp lệ", "Invalid message")
_ALREADY_AUTH: Final = ("Đã xác thực", "Already authenticated")


async def live_endpoint(websocket: WebSocket) -> None:
    """Serve one live-feed client until it disconnects."""
    state = app_state(websocket)
    hub = state.broadcaster
    await websocket.accept()
    try:
        if not hub.reserve():
            await _refuse(websocket, "too_many_clients", _FULL, CLOSE_TRY_AGAIN_LATER)
            return
        try:
            auth = await _authenticate(websocket, state)
            if auth is not None:
                client = hub.attach(auth[0])
                try:
                    await _serve(websocket, state, client, auth[1])
                finally:
                    hub.detach(client)
        finally:
            hub.release()
    except* WebSocketDisconnect:
        pass  # the client went away: nothing to clean up beyond the finally blocks


async def _refuse(websocket: WebSocket, code: str, text: tuple[str, str], close: int) -> None:
    vi, en = text
    error = ErrorMessage(code=code, detail=f"{vi} / {en}", message_vi=vi, message_en=en)
    await websocket.send_text(error.model_dump_json())
    await websocket.close(code=close, reason=en)


def _error(error: ApiError) -> ErrorMessage:
    return ErrorMessage(**error_body(error))


async def _receive(websocket: WebSocket) -> str | bytes:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text: str | None = message.get("text")
    return text if text is not None else bytes(message.get("bytes") or b"")


async def _authenticate(
    websocket: WebSocket, state: AppState
) -> tuple[Principal, ClientMessage | None] | None:
    """The principal and, for anonymous viewers, their first (non-auth) message."""
    token = websocket.query_params.get("token")
    first: ClientMessage | None = None
    try:
        if token is None:
            first = await _first_message(websocket, state.settings.ws_auth_timeout_s)
            if isinstance(first, AuthIn):
                token, first = first.token, None
        return authenticate(token, state), first
    except (AuthenticationError, ValidationError) as exc:
        state.broadcaster.stats.auth_failures += 1
        error = exc if isinstance(exc, AuthenticationError) else AuthenticationError(*_BAD_MESSAGE)
        await websocket.send_text(_error(error).model_dump_json())
        await websocket.close(code=CLOSE_UNAUTHENTICATED, reason=error.message_en)
        return None


async def _first_message(websocket: WebSocket, timeout_s: float) -> ClientMessage | None:
    try:
        async with asyncio.timeout(timeout_s):
            return client_message(await _receive(websocket))
    except TimeoutError:
        return None  # silent client: anonymous if allowed, refused otherwise


async def _serve(
    websocket: WebSocket, state: AppState, client: LiveClient, first: ClientMessage | None
) -> None:
    client.push_control(_hello(state, client.principal))
    if first is not None:
        _handle(first, state, client)
    async with asyncio.TaskGroup() as tasks:
        sender = tasks.create_task(_send_loop(websocket, state, client), name="ws-sender")
        beat = tasks.create_task(_heartbeat(client, state.settings.ws_heartbeat_s), name="ws-ping")
        try:
            await _read_loop(websocket, state, client)
        except ClientFloodError:
            logger.warning("closing client %d: it does not read its messages", client.client_id)
            await websocket.close(code=CLOSE_POLICY, reason="not reading")
        finally:
            sender.cancel()
            beat.cancel()


def _hello(state: AppState, principal: Principal) -> HelloMessage:
    settings = state.settings
    scope = principal.scope_domains
    return HelloMessage(
        server_time=now_utc(),
        principal=PrincipalOut(
            name=principal.name,
            role=principal.role,
            scope_domains=None if scope is None else sorted(scope),
        ),
        heartbeat_s=settings.ws_heartbeat_s,
        last_event_id=state.broadcaster.last_event_id,
        limits=LimitsOut(
            alert_queue_size=settings.ws_alert_queue_size,
            readings_max_rate_hz=settings.ws_readings_max_rate_hz,
        ),
    )


async def _read_loop(websocket: WebSocket, state: AppState, client: LiveClient) -> None:
    while True:
        raw = await _receive(websocket)
        try:
            message = client_message(raw)
        except ValidationError as exc:
            vi, en = _BAD_MESSAGE
            detail = f"{vi} / {en}: {exc.errors(include_url=False)[0]['msg']}"
            client.push_control(
                ErrorMessage(code="bad_message", detail=detail, message_vi=vi, message_en=en)
            )
            continue
        _handle(message, state, client)


def _handle(message: ClientMessage, state: AppState, client: LiveClient) -> None:
    hub, principal = state.broadcaster, client.principal
    if isinstance(message, AlertsSubscribeIn):
        scope = _scope(principal, message.domains, message.stations, None)
        client.push_control(_subscribed(message.channel, scope, message))
        flt = AlertFilter(min_rank=message.min_severity.rank, scope=scope)
        hub.subscribe_alerts(client, flt, message.resume_from)
    elif isinstance(message, ReadingsSubscribeIn):
        scope = _scope(principal, message.domains, message.stations, message.quantities)
        most = state.settings.ws_readings_max_rate_hz
        rate = most if message.max_rate_hz is None else min(message.max_rate_hz, most)
        client.push_control(_subscribed(message.channel, scope, max_rate_hz=rate))
        hub.subscribe_readings(client, scope, rate)
    elif isinstance(message, StatusSubscribeIn):
        scope = _scope(principal, message.domains, message.stations, None)
        client.push_control(_subscribed(message.channel, scope))
        hub.subscribe_status(client, scope)
    elif isinstance(message, UnsubscribeIn):
        client.unsubscribe(message.channel)
        client.push_control(UnsubscribedMessage(channel=message.channel))
    elif isinstance(message, PingIn):
        client.push_control(PongMessage(id=message.id, server_time=now_utc()))
    elif isinstance(message, AuthIn):
        vi, en = _ALREADY_AUTH
        error = ErrorMessage(
            code="bad_message", detail=f"{vi} / {en}", message_vi=vi, message_en=en
        )
        client.push_control(error)
    # PongIn: liveness only.


def _scope(
    principal: Principal,
    domains: list[Domain] | None,
    stations: list[str] | None,
    quantities: list[str] | None,
) -> ScopeFilter:
    visible = principal.visible_domains(domains)
    return ScopeFilter(
        domains=None if visible is None else frozenset(d.value for d in visible),
        stations=None if stations is None else frozenset(stations),
        quantities=None if quantities is None else frozenset(quantities),
    )


def _subscribed(
    channel: Channel,
    scope: ScopeFilter,
    alerts: AlertsSubscribeIn | None = None,
    max_rate_hz: float | None = None,
) -> SubscribedMessage:
    return SubscribedMessage(
        channel=channel,
        domains=None if scope.domains is None else sorted(scope.domains),
        stations=None if scope.stations is None else sorted(scope.stations),
        quantities=None if scope.quantities is None else sorted(scope.quantities),
        min_severity=None if alerts is None else alerts.min_severity,
        resume_from=None if alerts is None else alerts.resume_from,
        max_rate_hz=max_rate_hz,
    )


async def _heartbeat(client: LiveClient, period_s: float) -> None:
    while True:
        await asyncio.sleep(period_s)
        # A client whose control queue is full is not reading: the reader will notice.
        with contextlib.suppress(ClientFloodError):
            client.push_control(PingMessage(server_time=now_utc()))


async def _send_loop(websocket: WebSocket, state: AppState, client: LiveClient) -> None:
    stats = state.broadcaster.stats
    while True:
        delay = client.readings_delay(time.monotonic())
        if delay != 0.0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await client.wake.wait()
        client.wake.clear()
        for text in client.take_control():
            await websocket.send_text(text)
            stats.sent["control"] += 1
        await _send_alerts(websocket, state, client)
        status = client.take_status()
        if status is not None:
            await websocket.send_text(status)
            stats.sent["status"] += 1
        batch = client.take_readings(time.monotonic())
        if batch is not None:
            text, coalesced = batch
            await websocket.send_text(text)
            stats.sent["readings"] += 1
            stats.readings_coalesced += coalesced


async def _send_alerts(websocket: WebSocket, state: AppState, client: LiveClient) -> None:
    stats = state.broadcaster.stats
    sub = client.alerts
    if sub is None:
        return
    if sub.replaying:
        page_size = state.settings.ws_replay_page_size
        page = await state.broadcaster.replay_page(sub.cursor, page_size)
        if client.alerts is not sub:
            return  # re-subscribed or unsubscribed meanwhile
        matching = [item for item in page if sub.filter.matches(item)]
        for item in matching:
            await websocket.send_text(item.text)
            stats.sent["alerts"] += 1
        if page:
            client.note_replayed((i.event_id for i in matching), page[-1].event_id)
        if sub.finish_page(short=len(page) < page_size):
            await websocket.send_text(ReplayDoneMessage(last_event_id=sub.cursor).model_dump_json())
        client.wake.set()  # next page, or the live events queued meanwhile
        return
    for text in client.take_alerts():
        await websocket.send_text(text)
        stats.sent["alerts"] += 1
    if client.alerts is None and sub.overflowed:
        stats.resyncs += 1
