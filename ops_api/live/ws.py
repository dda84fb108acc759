"""The ``/ws`` endpoint: authenticate, then read requests and send the live feed.

Each connection runs three tasks: the reader (subscribe/unsubscribe/ping/pong, rate-limited
and size-limited), the sender (the only task that writes to the socket: control messages
first, then alert replays and live alerts, station states, and readings at the client's
rate; every send has a deadline) and the liveness watch (the server's ``ping`` every
``ws_heartbeat_s``, which the client must answer in time). Whichever finds the client
misbehaving ends all three and the connection, freeing its slot. Message formats are
documented in :mod:`ops_api.live.messages`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

import psycopg
from psycopg_pool import PoolTimeout
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from contract import Domain, now_utc
from ops_api.auth import Principal
from ops_api.deps import AppState, app_state, client_address
from ops_api.errors import (
    ApiError,
    AuthenticationError,
    DatabaseUnavailableError,
    RateLimitedError,
    error_body,
)
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
    PongIn,
    PongMessage,
    PrincipalOut,
    ReadingsSubscribeIn,
    ReplayDoneMessage,
    ResyncMessage,
    StatusSubscribeIn,
    SubscribedMessage,
    UnsubscribedMessage,
    UnsubscribeIn,
    client_message,
)
from ops_api.ratelimit import RateLimiter

__all__ = ["live_endpoint"]

logger = logging.getLogger(__name__)

CLOSE_TOKEN_IN_URL: Final = 4400
CLOSE_UNAUTHENTICATED: Final = 4401
CLOSE_NOT_READING: Final = 4408
CLOSE_PER_TOKEN: Final = 4429
CLOSE_TRY_AGAIN_LATER: Final = 1013
CLOSE_POLICY: Final = 1008
CLOSE_TOO_BIG: Final = 1009
_URL_CREDENTIALS: Final = frozenset({"token", "access_token", "api_key", "apikey", "key", "auth"})
_FULL: Final = ("Máy chủ đã đủ kết nối, vui lòng thử lại sau", "Too many clients, try again later")
_PER_TOKEN: Final = (
    "Mã truy cập này đã dùng hết số kết nối cho phép",
    "This token already holds its maximum number of live connections",
)
_TOKEN_IN_URL: Final = (
    "Không được đặt mã truy cập trong URL; gửi trong header Authorization hoặc tin nhắn auth",
    "Never put a token in the URL; send it in the Authorization header or an auth message",
)
_BAD_MESSAGE: Final = ("Tin nhắn không hợp lệ", "Invalid message")
_BAD_HEADER: Final = ("Header Authorization không hợp lệ", "Invalid Authorization header")
_ALREADY_AUTH: Final = ("Đã xác thực", "Already authenticated")
_TOO_FAST: Final = ("Gửi tin nhắn quá nhanh", "Too many messages; slow down")
_FLOOD_FACTOR: Final = 4  # burst of the per-connection message bucket, in seconds of rate


class _DropError(Exception):
    """End the connection: the client misbehaves (does not read, floods, is too big)."""

    def __init__(self, code: int, reason: str, counter: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.counter = counter


async def live_endpoint(websocket: WebSocket) -> None:
    """Serve one live-feed client until it disconnects or is dropped."""
    state = app_state(websocket)
    hub = state.broadcaster
    await websocket.accept()
    try:
        if _URL_CREDENTIALS & set(websocket.query_params.keys()):
            await _refuse(websocket, state, "token_in_url", _TOKEN_IN_URL, CLOSE_TOKEN_IN_URL)
            return
        if not hub.reserve():
            await _refuse(websocket, state, "too_many_clients", _FULL, CLOSE_TRY_AGAIN_LATER)
            return
        pending = True
        try:
            auth = await _authenticate(websocket, state)
            if auth is None:
                return
            hub.authenticated()
            pending = False
            principal, first = auth
            client = hub.attach(principal, principal.limit_key(client_address(websocket)))
            if client is None:
                await _refuse(websocket, state, "too_many_connections", _PER_TOKEN, CLOSE_PER_TOKEN)
                return
            try:
                await _serve(websocket, state, client, first)
            finally:
                hub.detach(client)
        finally:
            hub.release(pending=pending)
    except* WebSocketDisconnect:
        pass  # the client went away: nothing to clean up beyond the finally blocks


async def _send(websocket: WebSocket, state: AppState, text: str) -> None:
    """Send one frame within ``ws_send_timeout_s``.

    Raises:
        _DropError: when the client does not take it in time.
    """
    try:
        async with asyncio.timeout(state.settings.ws_send_timeout_s):
            await websocket.send_text(text)
    except TimeoutError:
        raise _DropError(CLOSE_NOT_READING, "send timed out", "send_timeout") from None


async def _close(websocket: WebSocket, state: AppState, code: int, reason: str) -> None:
    # A client that does not read cannot take the close frame either: do not wait for it.
    with contextlib.suppress(TimeoutError, RuntimeError, WebSocketDisconnect):
        async with asyncio.timeout(state.settings.ws_send_timeout_s):
            await websocket.close(code=code, reason=reason)


async def _refuse(
    websocket: WebSocket, state: AppState, code: str, text: tuple[str, str], close: int
) -> None:
    vi, en = text
    error = ErrorMessage(code=code, detail=f"{vi} / {en}", message_vi=vi, message_en=en)
    with contextlib.suppress(_DropError):
        await _send(websocket, state, error.model_dump_json())
    await _close(websocket, state, close, en)


def _error(error: ApiError) -> ErrorMessage:
    return ErrorMessage(**error_body(error))


async def _receive(websocket: WebSocket, max_bytes: int) -> str | bytes:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text: str | None = message.get("text")
    data: str | bytes = text if text is not None else bytes(message.get("bytes") or b"")
    # uvicorn refuses larger frames itself (ws_max_size); this holds under any server.
    if len(data) > max_bytes:
        raise _DropError(CLOSE_TOO_BIG, "message too big", "flooding")
    return data


def _bearer(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError(*_BAD_HEADER)
    return value.strip()


async def _authenticate(
    websocket: WebSocket, state: AppState
) -> tuple[Principal, ClientMessage | None] | None:
    """The principal and, for anonymous viewers, their first (non-auth) message."""
    settings = state.settings
    address = client_address(websocket)
    first: ClientMessage | None = None
    try:
        token = _bearer(websocket)
        if token is None:
            first = await _first_message(websocket, state)
            if isinstance(first, AuthIn):
                token, first = first.token, None
        if token is not None:
            state.authenticator.check_throttle(address)
        return await state.authenticator.principal(token, address), first
    except (AuthenticationError, ValidationError, RateLimitedError) as exc:
        state.broadcaster.stats.auth_failures += 1
        refusal: ApiError = (
            AuthenticationError(*_BAD_MESSAGE) if isinstance(exc, ValidationError) else exc
        )
        await _send_error_and_close(websocket, state, refusal, CLOSE_UNAUTHENTICATED)
    except (psycopg.OperationalError, TimeoutError):
        error = DatabaseUnavailableError(
            "Cơ sở dữ liệu không sẵn sàng", "Database unavailable", settings.retry_after_s
        )
        await _send_error_and_close(websocket, state, error, CLOSE_TRY_AGAIN_LATER)
    except _DropError as drop:
        await _close(websocket, state, drop.code, drop.reason)
    return None


async def _send_error_and_close(
    websocket: WebSocket, state: AppState, error: ApiError, close: int
) -> None:
    with contextlib.suppress(_DropError):
        await _send(websocket, state, _error(error).model_dump_json())
    await _close(websocket, state, close, error.message_en)


async def _first_message(websocket: WebSocket, state: AppState) -> ClientMessage | None:
    settings = state.settings
    try:
        async with asyncio.timeout(settings.ws_auth_timeout_s):
            return client_message(await _receive(websocket, settings.ws_max_message_bytes))
    except TimeoutError:
        return None  # silent client: anonymous if allowed, refused otherwise


async def _serve(
    websocket: WebSocket, state: AppState, client: LiveClient, first: ClientMessage | None
) -> None:
    client.push_control(_hello(state, client.principal))
    if first is not None:
        _handle(first, state, client)
    try:
        async with asyncio.TaskGroup() as tasks:
            sender = tasks.create_task(_send_loop(websocket, state, client), name="ws-sender")
            alive = tasks.create_task(_liveness(state, client), name="ws-liveness")
            # The reader runs in the body, not as a third task: a disconnect then ends the
            # group from its body (Python 3.11's TaskGroup leaks a cancellation when a
            # child fails while the body already waits in __aexit__).
            try:
                await _read_loop(websocket, state, client)
            finally:
                sender.cancel()
                alive.cancel()
    except* _DropError as group:
        drop = group.exceptions[0]
        assert isinstance(drop, _DropError)  # noqa: S101 - the except* filter says so
        stats = state.broadcaster.stats
        if drop.counter == "send_timeout":
            stats.dropped_send_timeout += 1
        elif drop.counter == "not_reading":
            stats.dropped_not_reading += 1
        else:
            stats.dropped_flooding += 1
        logger.info("closing live client %d: %s", client.client_id, drop.reason)
        await _close(websocket, state, drop.code, drop.reason)


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
            pong_timeout_s=settings.ws_pong_timeout_s,
            max_message_bytes=settings.ws_max_message_bytes,
            messages_per_s=settings.ws_messages_per_s,
        ),
    )


async def _read_loop(websocket: WebSocket, state: AppState, client: LiveClient) -> None:
    settings = state.settings
    rate = settings.ws_messages_per_s
    bucket = RateLimiter(rate_per_s=rate, burst=max(1, int(rate * _FLOOD_FACTOR)), max_keys=1)
    while True:
        raw = await _receive(websocket, settings.ws_max_message_bytes)
        try:
            if bucket.take("", now=time.monotonic()) > 0:
                vi, en = _TOO_FAST
                client.push_control(
                    ErrorMessage(code="rate_limited", detail=f"{vi} / {en}", message_vi=vi,
                                 message_en=en)
                )  # fmt: skip
                continue
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
        except ClientFloodError:
            raise _DropError(CLOSE_POLICY, "too many messages", "flooding") from None


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
    elif isinstance(message, PongIn):
        client.pong(message.id)
    elif isinstance(message, AuthIn):
        vi, en = _ALREADY_AUTH
        error = ErrorMessage(
            code="bad_message", detail=f"{vi} / {en}", message_vi=vi, message_en=en
        )
        client.push_control(error)


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


async def _liveness(state: AppState, client: LiveClient) -> None:
    """Ping every heartbeat; drop the client when a ping stays unanswered too long."""
    settings = state.settings
    period_s = min(settings.ws_heartbeat_s, settings.ws_pong_timeout_s / 2)
    while True:
        await asyncio.sleep(period_s)
        now = time.monotonic()
        if client.unanswered_for(now) > settings.ws_pong_timeout_s:
            raise _DropError(CLOSE_NOT_READING, "ping not answered", "not_reading")
        ping = client.ping(now)
        if ping is not None:
            try:
                client.push_control(ping)
            except ClientFloodError:
                raise _DropError(CLOSE_NOT_READING, "not reading", "not_reading") from None


async def _send_text(
    websocket: WebSocket, state: AppState, client: LiveClient, text: str, channel: str
) -> None:
    """Send within the deadline and the client's window (waiting for its pong if need be)."""
    settings = state.settings
    if client.unacked_bytes >= settings.ws_send_window_bytes:
        ping = client.ping(time.monotonic())
        if ping is not None:
            await _send(websocket, state, ping.model_dump_json())
        await client.acked.wait()  # the liveness task drops it if no pong comes in time
    await _send(websocket, state, text)
    client.unacked_bytes += len(text)
    state.broadcaster.stats.sent[channel] += 1


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
            await _send_text(websocket, state, client, text, "control")
        await _send_alerts(websocket, state, client)
        status = client.take_status()
        if status is not None:
            await _send_text(websocket, state, client, status, "status")
        batch = client.take_readings(time.monotonic())
        if batch is not None:
            text, coalesced = batch
            await _send_text(websocket, state, client, text, "readings")
            stats.readings_coalesced += coalesced


async def _send_alerts(websocket: WebSocket, state: AppState, client: LiveClient) -> None:
    stats = state.broadcaster.stats
    sub = client.alerts
    if sub is None:
        return
    if sub.replaying:
        page_size = state.settings.ws_replay_page_size
        try:
            page = await state.broadcaster.replay_page(sub.cursor, page_size)
        except (psycopg.Error, PoolTimeout):
            # The database is busy or away: the client resumes later from where it is.
            resync = ResyncMessage(resume_from=sub.cursor, reason="database unavailable")
            client.unsubscribe("alerts")
            await _send_text(websocket, state, client, resync.model_dump_json(), "alerts")
            stats.resyncs += 1
            return
        if client.alerts is not sub:
            return  # re-subscribed or unsubscribed meanwhile
        matching = [item for item in page if sub.filter.matches(item)]
        for item in matching:
            await _send_text(websocket, state, client, item.text, "alerts")
        if page:
            client.note_replayed((i.event_id for i in matching), page[-1].event_id)
        if sub.finish_page(short=len(page) < page_size):
            done = ReplayDoneMessage(last_event_id=sub.cursor).model_dump_json()
            await _send_text(websocket, state, client, done, "alerts")
        client.wake.set()  # next page, or the live events queued meanwhile
        return
    for text in client.take_alerts():
        await _send_text(websocket, state, client, text, "alerts")
    if client.alerts is None and sub.overflowed:
        stats.resyncs += 1
