"""WebSocket message formats of ``/ws`` (JSON text frames, one message per frame).

Connecting and authenticating
-----------------------------
Give the token in the ``Authorization: Bearer <token>`` header of the upgrade request (clients
that can set headers) or as the first message (browsers); never in the URL — a connection
to ``/ws?token=…`` is refused (code 4400, ``token_in_url``)::

    -> {"type": "auth", "token": "<token>"}            token may be null/omitted when
                                                      anonymous viewing is on (dev)
    <- {"type": "hello", "server_time": "2026-09-30T06:00:00Z",
        "principal": {"name": "so-tnmt", "role": "viewer", "scope_domains": ["flood"]},
        "heartbeat_s": 5.0, "last_event_id": 1234,
        "limits": {"alert_queue_size": 256, "readings_max_rate_hz": 1.0,
                   "pong_timeout_s": 10.0, "max_message_bytes": 16384,
                   "messages_per_s": 10.0}}

A bad token closes the socket with code 4401; a full server (or too many connections still
authenticating) with 1013 (try again later); a token that already holds its
``ws_max_clients_per_token`` connections with 4429; each after an ``error`` message. When
anonymous viewing is on, a first message other than ``auth`` is accepted as an anonymous
viewer's.

Channels
--------
::

    -> {"type": "subscribe", "channel": "alerts", "min_severity": "moderate",
        "domains": ["flood"], "stations": null, "resume_from": 1200}
    -> {"type": "subscribe", "channel": "readings", "domains": ["air"],
        "stations": ["aq-hoan-kiem"], "quantities": ["pm25"], "max_rate_hz": 0.5}
    -> {"type": "subscribe", "channel": "status", "domains": null, "stations": null}
    -> {"type": "unsubscribe", "channel": "readings"}
    <- {"type": "subscribed", "channel": "alerts", "domains": ["flood"], "stations": null,
        "quantities": null, "min_severity": "moderate", "resume_from": 1200,
        "max_rate_hz": null}
    <- {"type": "unsubscribed", "channel": "readings"}

Every filter is narrowed by the token's scope (a flood-only token subscribing to all
domains gets ``"domains": ["flood"]``). Subscribing again replaces the channel's filter.

Alerts: ``resume_from`` replays every stored event with a larger id, in id order and
marked ``"replay": true``, then ``replay_done``, then live events; without it only live
events come. ``alert`` is the alert's state when the event was read::

    <- {"type": "alert_event", "replay": false,
        "event": {"event_id": 1201, "alert_id": 87, "at": "...Z", "at_local": "...+07:00",
                  "action": "raised", "actor": "processing", "severity": "severe",
                  "value": 34.0, "note": null},
        "alert": {<AlertOut, as GET /api/alerts/{id} without events>}}
    <- {"type": "replay_done", "channel": "alerts", "last_event_id": 1230}
    <- {"type": "resync", "channel": "alerts", "resume_from": 1230,
        "reason": "alert queue overflow"}

Alerts are never dropped silently: a client that falls more than ``alert_queue_size``
events behind gets what was queued, then ``resync``; its alert subscription ends and it
subscribes again with ``resume_from`` (everything up to that id was delivered or did not
match its filter).

Readings come from the ``latest`` table, polled once per second for all clients, and
coalesce per client: a slow client gets the newest value per sensor, never a backlog
(``coalesced`` counts the values replaced before they were sent). The first batch after
subscribing is a snapshot of the current values::

    <- {"type": "readings", "coalesced": 0,
        "readings": [{"sensor": "aq-hoan-kiem.pm25", "station_id": "aq-hoan-kiem",
                      "domain": "air", "quantity": "pm25", "unit": "ug/m3",
                      "value": 41.5, "quality": 0, "time": "...Z"}]}

Status sends station state changes (and a snapshot first); ``state`` is online, offline,
stale or unknown::

    <- {"type": "status", "stations": [{"station_id": "fd-thai-ha", "domain": "flood",
        "state": "stale", "reported_state": "online", "since": "...Z", "reason": null,
        "last_received": "...Z"}]}

Heartbeats and errors
---------------------
::

    <- {"type": "ping", "id": 12, "server_time": "...Z"}   every heartbeat_s
    -> {"type": "pong", "id": 12}                           required, within pong_timeout_s
    -> {"type": "ping", "id": 7}
    <- {"type": "pong", "id": 7, "server_time": "...Z"}
    <- {"type": "error", "code": "bad_message", "detail": "...", "message_vi": "...",
        "message_en": "..."}

A client that does not read is closed, freeing its slot: a ``ping`` not answered within
``pong_timeout_s`` closes it with 4408, and so does a send that cannot be completed within
``ws_send_timeout_s``. After ``ws_send_window_bytes`` sent since the last answered ping the
server sends nothing more until the client answers a new ping (readings coalesce meanwhile,
alerts overflow into ``resync``). Frames larger than ``max_message_bytes`` close the socket
(1009); more than ``messages_per_s`` (bursts of four times that) are refused with
``rate_limited`` errors, and a client that keeps flooding is closed (1008). Dead peers are
also found by WebSocket protocol pings.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from contract import Domain, StationStateName
from ops_api.alert_schemas import AlertEventOut, AlertOut
from ops_api.auth import Role
from ops_api.params import BIGINT_MAX, QUANTITY_PATTERN, STATION_PATTERN
from ops_api.timefmt import UtcDatetime
from processing.alerts import Severity

__all__ = [
    "AlertEventMessage",
    "AlertsSubscribeIn",
    "AuthIn",
    "Channel",
    "ClientMessage",
    "ErrorMessage",
    "HelloMessage",
    "LimitsOut",
    "LiveReadingOut",
    "PingIn",
    "PingMessage",
    "PongIn",
    "PongMessage",
    "PrincipalOut",
    "ReadingsMessage",
    "ReadingsSubscribeIn",
    "ReplayDoneMessage",
    "ResyncMessage",
    "StationStatusOut",
    "StatusMessage",
    "StatusSubscribeIn",
    "SubscribedMessage",
    "UnsubscribeIn",
    "UnsubscribedMessage",
    "client_message",
]

Channel = Literal["alerts", "readings", "status"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthIn(_In):
    """``auth``: the token (``None`` asks for anonymous viewing)."""

    type: Literal["auth"]
    token: str | None = Field(default=None, max_length=512)


StationIdIn = Annotated[str, Field(pattern=STATION_PATTERN, max_length=63)]
QuantityIn = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=64)]
_MAX_STATIONS = 1000  # a filter longer than the fleet is never needed
_MAX_QUANTITIES = 64


class AlertsSubscribeIn(_In):
    """``subscribe`` to ``alerts``."""

    type: Literal["subscribe"]
    channel: Literal["alerts"]
    min_severity: Severity = Severity.INFO
    domains: list[Domain] | None = Field(default=None, max_length=4)
    stations: list[StationIdIn] | None = Field(default=None, max_length=_MAX_STATIONS)
    resume_from: int | None = Field(default=None, ge=0, le=BIGINT_MAX)


class ReadingsSubscribeIn(_In):
    """``subscribe`` to ``readings``."""

    type: Literal["subscribe"]
    channel: Literal["readings"]
    domains: list[Domain] | None = Field(default=None, max_length=4)
    stations: list[StationIdIn] | None = Field(default=None, max_length=_MAX_STATIONS)
    quantities: list[QuantityIn] | None = Field(default=None, max_length=_MAX_QUANTITIES)
    max_rate_hz: float | None = Field(default=None, gt=0, le=1000)


class StatusSubscribeIn(_In):
    """``subscribe`` to ``status``."""

    type: Literal["subscribe"]
    channel: Literal["status"]
    domains: list[Domain] | None = Field(default=None, max_length=4)
    stations: list[StationIdIn] | None = Field(default=None, max_length=_MAX_STATIONS)


class UnsubscribeIn(_In):
    """``unsubscribe`` from a channel."""

    type: Literal["unsubscribe"]
    channel: Channel


ClientId = Annotated[int, Field(ge=-(2**53), le=2**53)] | Annotated[str, Field(max_length=64)]


class PingIn(_In):
    """A client's ``ping``; answered with ``pong`` carrying the same id."""

    type: Literal["ping"]
    id: ClientId | None = None


class PongIn(_In):
    """A client's answer to a server ``ping``: must carry the ping's ``id``, in time."""

    type: Literal["pong"]
    id: ClientId | None = None


SubscribeIn = Annotated[
    AlertsSubscribeIn | ReadingsSubscribeIn | StatusSubscribeIn, Field(discriminator="channel")
]
ClientMessage = Annotated[
    AuthIn | SubscribeIn | UnsubscribeIn | PingIn | PongIn, Field(discriminator="type")
]
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


def client_message(text: str | bytes) -> ClientMessage:
    """Parse one client message.

    Raises:
        pydantic.ValidationError: when it is not one of the messages above.
    """
    return _client_adapter.validate_json(text)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class PrincipalOut(_Out):
    """Who the server thinks the client is."""

    name: str
    role: Role
    scope_domains: list[Domain] | None


class LimitsOut(_Out):
    """Per-client limits."""

    alert_queue_size: int
    readings_max_rate_hz: float
    pong_timeout_s: float
    max_message_bytes: int
    messages_per_s: float


class HelloMessage(_Out):
    """Sent once authenticated."""

    type: Literal["hello"] = "hello"
    server_time: UtcDatetime
    principal: PrincipalOut
    heartbeat_s: float
    last_event_id: int
    limits: LimitsOut


class SubscribedMessage(_Out):
    """Confirms a subscription with its effective (scope-narrowed) filter."""

    type: Literal["subscribed"] = "subscribed"
    channel: Channel
    domains: list[str] | None = None
    stations: list[str] | None = None
    quantities: list[str] | None = None
    min_severity: Severity | None = None
    resume_from: int | None = None
    max_rate_hz: float | None = None


class UnsubscribedMessage(_Out):
    """Confirms an unsubscription."""

    type: Literal["unsubscribed"] = "unsubscribed"
    channel: Channel


class AlertEventMessage(_Out):
    """One alert event (live or replayed) and the alert it belongs to."""

    type: Literal["alert_event"] = "alert_event"
    replay: bool
    event: AlertEventOut
    alert: AlertOut | None


class ReplayDoneMessage(_Out):
    """Replay finished; live events follow."""

    type: Literal["replay_done"] = "replay_done"
    channel: Literal["alerts"] = "alerts"
    last_event_id: int


class ResyncMessage(_Out):
    """The client fell behind; subscribe again with ``resume_from``."""

    type: Literal["resync"] = "resync"
    channel: Literal["alerts"] = "alerts"
    resume_from: int
    reason: str


class LiveReadingOut(_Out):
    """The newest value of one sensor."""

    sensor: str
    station_id: str
    domain: str
    quantity: str
    unit: str
    value: float
    quality: int
    time: UtcDatetime


class ReadingsMessage(_Out):
    """Changed values since the last batch (newest per sensor)."""

    type: Literal["readings"] = "readings"
    coalesced: int
    readings: list[LiveReadingOut]


class StationStatusOut(_Out):
    """A station's current state."""

    station_id: str
    domain: str
    state: StationStateName
    reported_state: str | None
    since: UtcDatetime | None
    reason: str | None
    last_received: UtcDatetime | None


class StatusMessage(_Out):
    """Changed station states."""

    type: Literal["status"] = "status"
    stations: list[StationStatusOut]


class PingMessage(_Out):
    """The server's heartbeat; answer with ``{"type": "pong", "id": <id>}``."""

    type: Literal["ping"] = "ping"
    id: int
    server_time: UtcDatetime


class PongMessage(_Out):
    """Answer to a client ``ping``."""

    type: Literal["pong"] = "pong"
    id: int | str | None
    server_time: UtcDatetime


class ErrorMessage(_Out):
    """Something the client sent could not be done."""

    type: Literal["error"] = "error"
    code: str
    detail: str
    message_vi: str
    message_en: str
