"""ApiSettings: the ops API's configuration, from ``API_*`` environment variables.

Tokens map to roles (``viewer`` < ``operator`` < ``admin``) and, for scoped subscribers
such as the environment department, to the domains they may see::

    API_TOKENS='{"3f9c...": {"role": "operator", "name": "truc-ban-1"},
                 "a71e...": {"role": "viewer", "name": "so-tnmt",
                             "scope_domains": ["flood"]}}'

With ``ENV=dev`` (the default) and no tokens configured, the documented development tokens
in :data:`DEV_TOKENS` apply and anonymous read access is on, so ``hanoi-ioc up`` works out
of the box on a laptop. Any other environment refuses placeholder secrets and short tokens.
"""

from __future__ import annotations

import ipaddress
from typing import Final, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import DEFAULT_STALE_FACTOR, DEFAULT_STALE_MIN_S, Domain
from contract.webhook import DEV_SECRET_KEY
from ops_api.auth import Role

__all__ = ["DEV_TOKENS", "ApiSettings", "TokenGrant"]

_PLACEHOLDERS: Final = frozenset(
    {"changethis", "changeme", "change-me", "secret", "password", "token", "postgres", "hanoi"}
)
_MIN_TOKEN_CHARS: Final = 16
_MIN_SECRET_CHARS: Final = 32
_DEV_SECRET_KEY: Final = DEV_SECRET_KEY  # the one the webhook dispatcher derives with too


class TokenGrant(BaseModel):
    """What one API token may do.

    Args:
        role: ``viewer`` (read), ``operator`` (acknowledge, clear, comment, quarantine) or
            ``admin`` (everything).
        name: who holds it; recorded as the actor in the alert audit trail.
        scope_domains: when set, the holder sees only these domains (alerts, stations,
            readings); ``None`` means every domain.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role = Role.VIEWER
    name: str | None = Field(default=None, min_length=1, max_length=64)
    scope_domains: frozenset[Domain] | None = None


DEV_TOKENS: Final[dict[str, TokenGrant]] = {
    "dev-viewer": TokenGrant(role=Role.VIEWER, name="dev-viewer"),
    "dev-operator": TokenGrant(role=Role.OPERATOR, name="dev-operator"),
    "dev-admin": TokenGrant(role=Role.ADMIN, name="dev-admin"),
    "dev-flood": TokenGrant(
        role=Role.VIEWER, name="dev-flood", scope_domains=frozenset({Domain.FLOOD})
    ),
}
"""Development tokens, active only with ``ENV=dev`` and no ``API_TOKENS`` configured."""


class ApiSettings(BaseSettings):
    """Configuration of the ops API (environment prefix ``API_``).

    Args:
        env: ``dev`` allows placeholder secrets and the development tokens; read from
            ``API_ENV`` or ``ENV``.
        database_url: libpq URL; read from ``API_DATABASE_URL`` or ``DATABASE_URL``.
        host: interface to bind.
        port: TCP port.
        instance: a name of this running API, echoed by ``/health`` (``hanoi-ioc up`` gives
            each API it starts a random one, to know the port answers with its own API).
        tokens: token -> grant (JSON in ``API_TOKENS``).
        open_viewer: anonymous read-only access; defaults to on in dev, off elsewhere.
        ws_max_clients: concurrent WebSocket clients; more are refused with code 1013.
        ws_alert_queue_size: alert events buffered per client before it is told to resync.
        ws_readings_max_rate_hz: most readings batches per second sent to one client.
        ws_heartbeat_s: interval of the server's application-level ``ping`` messages.
        ws_auth_timeout_s: how long a new client has to send its ``auth`` message.
        ws_replay_page_size: alert events read per query while replaying.
        readings_poll_s: how often the shared task polls the ``latest`` table.
        status_poll_s: how often the shared task polls station states.
        listen_backoff_initial_s: first LISTEN reconnect delay (doubles, with jitter).
        listen_backoff_max_s: cap of the LISTEN reconnect delay.
        stale_factor: a station is stale when its newest reading arrived longer ago than
            ``stale_factor`` times its shortest reporting interval.
        stale_min_s: lower bound of that staleness threshold.
        heartbeat_stale_s: a service whose heartbeat is older is reported stale in /health.
        history_default_points: points returned by /api/history without ``max_points``.
        history_max_points: the largest ``max_points`` accepted.
        indices_window_s: how far back /api/stations looks for each station's latest indices.
        console_cleared_visible_s: how long the console keeps showing an alert after it was
            cleared (greyed, labelled "Đã kết thúc / Cleared"), so a newcomer sees the story.
        cap_sender: the CAP 1.2 ``sender`` of the public feeds.
        cap_status: the CAP ``status``; defaults to ``Test`` in dev (simulated data), else
            ``Actual``.
        cap_cleared_window_s: how long a cleared public alert stays in its CAP feed (as its
            all-clear message).
        cap_cleared_max: the most recently cleared alerts a feed lists at most (every open
            one is always listed: at most one per rule and station).
        db_pool_min_size: connections kept open.
        db_pool_max_size: connections at most.
        db_timeout_s: wait for a pooled connection before answering 503.
        db_max_waiting: requests queued for a pooled connection at most; more are answered
            503 ``overloaded`` at once.
        db_statement_timeout_s: a query running longer is cancelled (503 ``query_timeout``).
        retry_after_s: the ``Retry-After`` of a 503.
        public_base_url: the API's public address (``https://ioc.example.vn``); absolute
            links (CAP, Atom) are built from it, never from the request's Host header.
            Required outside dev.
        docs_enabled: serve ``/docs`` and ``/openapi.json``; defaults to off in prod.
        metrics_role: the role ``/metrics`` needs (``open``: anyone); defaults to open in
            dev and ``viewer`` elsewhere (give Prometheus a viewer token).
        max_body_bytes: the largest request body; a larger one is refused with 413 before
            it is read (and before authentication).
        max_url_bytes: the longest path plus query string (414 beyond).
        max_header_bytes: request line plus headers at most (the HTTP parser refuses more).
        max_headers: request headers at most (431 beyond).
        max_concurrent_requests: HTTP requests served at once; more get 503 ``overloaded``.
        max_connections: open connections (HTTP and WebSocket) at most; uvicorn answers 503
            beyond it.
        write_rate_per_s: sustained writes (POST/PUT/PATCH/DELETE) per token per second.
        write_burst: writes a token may make at once before the rate applies.
        auth_failures_per_min: failed authentications per client address and minute; more
            are answered 429.
        token_cache_s: how long a database token stays valid in memory (revocation delay).
        secret_key: the server secret subscriber webhook secrets are derived from
            (``API_SECRET_KEY``, 32 characters at least outside dev).
        ws_max_clients_per_token: WebSocket connections one token may hold at once.
        ws_max_pending: connections not yet authenticated at most.
        ws_max_message_bytes: the largest frame a client may send (closed with 1009 beyond).
        ws_messages_per_s: client messages per second per connection (burst: 4x).
        ws_send_timeout_s: a send that does not complete in time closes the connection.
        ws_pong_timeout_s: a client must answer the server's ``ping`` (with ``pong`` and its
            ``id``) within this; one that does not read is closed, freeing its slot.
        ws_send_window_bytes: bytes sent since the last answered ``ping`` before the server
            pauses and asks for a ``pong`` at once.
    """

    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore", frozen=True)

    env: Literal["dev", "test", "staging", "prod"] = Field(
        default="dev", validation_alias=AliasChoices("API_ENV", "ENV")
    )
    database_url: str = Field(
        default="postgresql://hanoi@127.0.0.1:5432/hanoi",
        validation_alias=AliasChoices("API_DATABASE_URL", "DATABASE_URL"),
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    instance: str | None = Field(default=None, max_length=64)
    tokens: dict[str, TokenGrant] = Field(default_factory=dict)
    open_viewer: bool | None = None

    ws_max_clients: int = Field(default=500, ge=1)
    ws_alert_queue_size: int = Field(default=256, ge=1)
    ws_readings_max_rate_hz: float = Field(default=1.0, gt=0, le=50)
    ws_heartbeat_s: float = Field(default=5.0, gt=0)
    ws_auth_timeout_s: float = Field(default=10.0, gt=0)
    ws_replay_page_size: int = Field(default=500, ge=1, le=10_000)
    readings_poll_s: float = Field(default=1.0, gt=0)
    status_poll_s: float = Field(default=2.0, gt=0)
    listen_backoff_initial_s: float = Field(default=0.5, gt=0)
    listen_backoff_max_s: float = Field(default=30.0, gt=0)

    # One staleness rule for the whole system (contract.StaleRule): ingest records it, the
    # API shows it, both from the same unprefixed variables.
    stale_factor: float = Field(
        default=DEFAULT_STALE_FACTOR, gt=1,
        validation_alias=AliasChoices("STALE_FACTOR", "stale_factor"),
    )  # fmt: skip
    stale_min_s: float = Field(
        default=DEFAULT_STALE_MIN_S, ge=0,
        validation_alias=AliasChoices("STALE_MIN_S", "stale_min_s"),
    )  # fmt: skip
    heartbeat_stale_s: float = Field(default=60.0, gt=0)
    history_default_points: int = Field(default=500, ge=2)
    history_max_points: int = Field(default=5000, ge=2)
    indices_window_s: float = Field(default=2 * 86400.0, gt=0)

    console_cleared_visible_s: float = Field(default=2 * 3600.0, ge=0, le=7 * 86400.0)
    cap_sender: str = Field(default="hanoi-ioc", pattern=r"^[^\s,<&]+$")
    cap_status: Literal["Actual", "Exercise", "System", "Test", "Draft"] | None = None
    cap_cleared_window_s: float = Field(default=6 * 3600.0, ge=0, le=30 * 86400.0)
    cap_cleared_max: int = Field(default=500, ge=0, le=10_000)

    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=20, ge=1)
    db_timeout_s: float = Field(default=5.0, gt=0)
    db_max_waiting: int = Field(default=500, ge=0)
    db_statement_timeout_s: float = Field(default=15.0, gt=0)
    retry_after_s: int = Field(default=2, ge=1, le=3600)

    public_base_url: AnyHttpUrl | None = None
    docs_enabled: bool | None = None
    metrics_role: Role | Literal["default"] | None = "default"

    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_url_bytes: int = Field(default=8192, ge=256, le=65536)
    max_header_bytes: int = Field(default=16384, ge=1024, le=1024 * 1024)
    max_headers: int = Field(default=64, ge=8, le=1000)
    max_concurrent_requests: int = Field(default=256, ge=1)
    max_connections: int = Field(default=2048, ge=2)
    write_rate_per_s: float = Field(default=5.0, gt=0)
    write_burst: int = Field(default=20, ge=1)
    auth_failures_per_min: int = Field(default=60, ge=1)
    token_cache_s: float = Field(default=5.0, ge=0, le=300)
    secret_key: SecretStr | None = None

    ws_max_clients_per_token: int = Field(default=10, ge=1)
    ws_max_pending: int = Field(default=100, ge=1)
    ws_max_message_bytes: int = Field(default=16 * 1024, ge=256, le=1024 * 1024)
    ws_messages_per_s: float = Field(default=10.0, gt=0)
    ws_send_timeout_s: float = Field(default=5.0, gt=0)
    ws_pong_timeout_s: float = Field(default=10.0, gt=0)
    ws_send_window_bytes: int = Field(default=1024 * 1024, ge=4096)

    @property
    def is_dev(self) -> bool:
        """True in the development environment."""
        return self.env == "dev"

    @property
    def effective_tokens(self) -> dict[str, TokenGrant]:
        """The configured tokens, or :data:`DEV_TOKENS` in dev when none are configured."""
        if not self.tokens and self.is_dev:
            return dict(DEV_TOKENS)
        return dict(self.tokens)

    @property
    def effective_cap_status(self) -> Literal["Actual", "Exercise", "System", "Test", "Draft"]:
        """The CAP ``status`` to publish with."""
        if self.cap_status is not None:
            return self.cap_status
        return "Test" if self.is_dev else "Actual"

    @property
    def effective_docs(self) -> bool:
        """Whether ``/docs`` and ``/openapi.json`` are served."""
        return self.env != "prod" if self.docs_enabled is None else self.docs_enabled

    @property
    def effective_metrics_role(self) -> Role | None:
        """The role ``/metrics`` needs (``None``: open)."""
        if self.metrics_role == "default":
            return None if self.is_dev else Role.VIEWER
        return self.metrics_role

    @property
    def base_url(self) -> str:
        """The public base URL without a trailing slash."""
        if self.public_base_url is None:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
            return f"http://{host}:{self.port}"
        return str(self.public_base_url).rstrip("/")

    @property
    def secret_key_bytes(self) -> bytes | None:
        """The server secret (dev: a fixed development key when none is set)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        return _DEV_SECRET_KEY if self.is_dev else None

    @property
    def anonymous_viewers(self) -> bool:
        """Whether requests without a token may read."""
        return self.is_dev if self.open_viewer is None else self.open_viewer

    @field_validator("secret_key", "public_base_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker-compose passes unset variables as empty strings
        return None if value == "" else value

    @field_validator("metrics_role", mode="before")
    @classmethod
    def _open_metrics(cls, value: object) -> object:
        # API_METRICS_ROLE=open (or none/null/empty) serves /metrics to anyone
        if isinstance(value, str) and value.strip().lower() in {"", "open", "none", "null"}:
            return None
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Self:
        if self.is_dev:
            if not self.tokens and not _is_loopback(self.host):
                msg = (
                    f"the development tokens are public; bind {self.host!r} only with "
                    "API_TOKENS configured (or bind 127.0.0.1)"
                )
                raise ValueError(msg)
            return self
        for token in self.tokens:
            if token in DEV_TOKENS or token.lower() in _PLACEHOLDERS:
                msg = f"API_TOKENS holds a placeholder token {token[:4]}… (ENV={self.env})"
                raise ValueError(msg)
            if len(token) < _MIN_TOKEN_CHARS:
                msg = f"API tokens need at least {_MIN_TOKEN_CHARS} characters (ENV={self.env})"
                raise ValueError(msg)
        if self.secret_key is not None:
            key = self.secret_key.get_secret_value()
            if len(key) < _MIN_SECRET_CHARS or key.lower() in _PLACEHOLDERS:
                msg = f"API_SECRET_KEY needs {_MIN_SECRET_CHARS} characters and no placeholder"
                raise ValueError(msg)
        password = urlsplit(self.database_url).password
        if password is not None and password.lower() in _PLACEHOLDERS:
            msg = f"the database password is a placeholder (ENV={self.env})"
            raise ValueError(msg)
        if self.public_base_url is None:
            msg = f"API_PUBLIC_BASE_URL is required outside dev (ENV={self.env})"
            raise ValueError(msg)
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
